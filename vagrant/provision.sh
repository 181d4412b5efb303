#!/usr/bin/env bash
# Provision one nodelet node (run by Vagrant as root; a person can run it too, and re-run it: it is idempotent).
#   provision.sh NODE_NAME NODE_IP POD_CIDR ETCD_CLUSTER PKI_DIR [SOURCE]
# ETCD_CLUSTER is name=ip,name=ip,... of the etcd members; this node runs one if its name is in the list.
# PKI_DIR holds the cluster CA (shared by all nodes; created by the first node provisioned). This node gets one
# certificate (server + client, SAN = its IP, 127.0.0.1, its name) for etcd's clients, its peers and nodelet.
# NODELET_INSTALL_ARGS adds installer flags (tests: "--root DIR --no-apt --system-site-packages");
# NODELET_ROOT (default /) is where files go, matching --root; with a root other than /, services are not touched.
set -euo pipefail
NODE=${1:?node name} IP=${2:?node ip} POD_CIDR=${3:?pod cidr} ETCD_CLUSTER=${4:?etcd members name=ip,...}
PKI=${5:?pki dir} SOURCE=${6:-/vagrant}
ROOT=${NODELET_ROOT:-/}
R=${ROOT%/}
CLUSTER_CIDR=${NODELET_CLUSTER_CIDR:-10.244.0.0/16}
[ "$(id -u)" = 0 ] || { echo "provision.sh: run as root" >&2; exit 2; }

# the installer's bootstrap (python3 + venv) and etcd from Debian (etcd-server, etcd-client), openssl for the certs
missing=()
for p in python3 python3-venv openssl etcd-server etcd-client; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
PYTHON=${NODELET_PYTHON:-python3}

# ---- certificates: one CA for the cluster (in the shared folder), one certificate per node
mkdir -p "$PKI"
if [ ! -s "$PKI/ca.pem" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=nodelet-etcd-ca" \
    -keyout "$PKI/ca-key.pem" -out "$PKI/ca.pem" 2>/dev/null
fi
tls="$R/etc/nodelet/etcd"
mkdir -p "$tls"
install -m 0644 "$PKI/ca.pem" "$tls/ca.pem"
if [ ! -s "$tls/node.pem" ] || ! openssl verify -CAfile "$tls/ca.pem" "$tls/node.pem" >/dev/null 2>&1 \
   || ! openssl x509 -in "$tls/node.pem" -noout -text | grep -q "IP Address:$IP"; then
  ext=$(mktemp)
  printf 'subjectAltName=IP:%s,IP:127.0.0.1,DNS:%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$IP" "$NODE" > "$ext"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$NODE" -keyout "$tls/node-key.pem" -out "$tls/node.csr" 2>/dev/null
  openssl x509 -req -in "$tls/node.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca-key.pem" -CAcreateserial -days 3650 \
    -extfile "$ext" -out "$tls/node.pem" 2>/dev/null
  rm -f "$ext" "$tls/node.csr"
fi
chmod 0600 "$tls/node-key.pem"
getent group etcd >/dev/null && chgrp etcd "$tls/node-key.pem" && chmod 0640 "$tls/node-key.pem"

# ---- etcd: a member here if this node is in ETCD_CLUSTER (Debian's etcd.service reads /etc/default/etcd)
endpoints="" initial="" member=no
IFS=, read -ra members <<< "$ETCD_CLUSTER"
for m in "${members[@]}"; do
  name=${m%%=*} mip=${m#*=}
  endpoints="${endpoints:+$endpoints,}https://$mip:2379"
  initial="${initial:+$initial,}$name=https://$mip:2380"
  [ "$name" = "$NODE" ] && member=yes
done
if [ "$member" = yes ]; then
  mkdir -p "$R/etc/default"
  cat > "$R/etc/default/etcd.new" <<EOT
# written by nodelet's vagrant/provision.sh: this node's member of the cluster's etcd (TLS for clients and peers)
ETCD_NAME=$NODE
ETCD_DATA_DIR=/var/lib/etcd/nodelet
ETCD_LISTEN_CLIENT_URLS=https://$IP:2379,https://127.0.0.1:2379
ETCD_ADVERTISE_CLIENT_URLS=https://$IP:2379
ETCD_LISTEN_PEER_URLS=https://$IP:2380
ETCD_INITIAL_ADVERTISE_PEER_URLS=https://$IP:2380
ETCD_INITIAL_CLUSTER=$initial
ETCD_INITIAL_CLUSTER_STATE=new
ETCD_INITIAL_CLUSTER_TOKEN=nodelet-vagrant
ETCD_CERT_FILE=/etc/nodelet/etcd/node.pem
ETCD_KEY_FILE=/etc/nodelet/etcd/node-key.pem
ETCD_TRUSTED_CA_FILE=/etc/nodelet/etcd/ca.pem
ETCD_CLIENT_CERT_AUTH=true
ETCD_PEER_CERT_FILE=/etc/nodelet/etcd/node.pem
ETCD_PEER_KEY_FILE=/etc/nodelet/etcd/node-key.pem
ETCD_PEER_TRUSTED_CA_FILE=/etc/nodelet/etcd/ca.pem
ETCD_PEER_CLIENT_CERT_AUTH=true
EOT
  if cmp -s "$R/etc/default/etcd.new" "$R/etc/default/etcd"; then
    rm "$R/etc/default/etcd.new"
  else
    mv "$R/etc/default/etcd.new" "$R/etc/default/etcd"
    if [ "$ROOT" = / ]; then
      # --no-block: a new member waits for a quorum, which the next VMs bring
      systemctl enable etcd >/dev/null 2>&1 || true
      systemctl --no-block restart etcd
    fi
  fi
fi

cd "$SOURCE"
# shellcheck disable=SC2086  # NODELET_INSTALL_ARGS is a list of flags
"$PYTHON" -m kubelet.node.install --source "$SOURCE" --node-name "$NODE" --node-ip "$IP" --pod-cidr "$POD_CIDR" \
  --etcd-endpoints "$endpoints" --etcd-ca-file /etc/nodelet/etcd/ca.pem --etcd-cert-file /etc/nodelet/etcd/node.pem \
  --etcd-key-file /etc/nodelet/etcd/node-key.pem --cluster-cidr "$CLUSTER_CIDR" ${NODELET_INSTALL_ARGS:-}

# the example static pods and Service (same files on every node: each runs its own web-a-<node>, web-b-<node>)
manifests="$R/etc/kubernetes/manifests"
mkdir -p "$manifests"
for f in "$SOURCE"/vagrant/manifests/*.yaml; do
  dest="$manifests/$(basename "$f")"
  cmp -s "$f" "$dest" 2>/dev/null || install -m 0644 "$f" "$dest"
done
echo "provisioned $NODE ($IP, podCIDR $POD_CIDR, etcd member: $member, etcd $endpoints)"
