#!/usr/bin/env bash
# Provision one nodelet node (run by Vagrant as root; a person can run it too, and re-run it: it is idempotent).
#   provision.sh NODE_NAME NODE_IP POD_CIDR CLUSTER_DIR [SOURCE]
# NODELET_INSTALL_ARGS adds installer flags (tests: "--root DIR --no-apt --system-site-packages");
# NODELET_ROOT (default /) is where the example manifests go, matching --root.
set -euo pipefail
NODE=${1:?node name} IP=${2:?node ip} POD_CIDR=${3:?pod cidr} CLUSTER_DIR=${4:?cluster dir} SOURCE=${5:-/vagrant}
ROOT=${NODELET_ROOT:-/}
[ "$(id -u)" = 0 ] || { echo "provision.sh: run as root" >&2; exit 2; }

# the installer's own bootstrap: a python3 that can make a venv (everything else the installer installs itself)
missing=()
for p in python3 python3-venv; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
PYTHON=${NODELET_PYTHON:-python3}

cd "$SOURCE"
# shellcheck disable=SC2086  # NODELET_INSTALL_ARGS is a list of flags
"$PYTHON" -m kubelet.node.install --source "$SOURCE" --node-name "$NODE" --node-ip "$IP" --pod-cidr "$POD_CIDR" \
  --cluster-dir "$CLUSTER_DIR" ${NODELET_INSTALL_ARGS:-}

# the example static pods (same files on every node: each node runs its own web-a-<node>, web-b-<node>)
manifests="${ROOT%/}/etc/kubernetes/manifests"
mkdir -p "$manifests"
for f in "$SOURCE"/vagrant/manifests/*.yaml; do
  dest="$manifests/$(basename "$f")"
  cmp -s "$f" "$dest" 2>/dev/null || install -m 0644 "$f" "$dest"
done
echo "provisioned $NODE ($IP, podCIDR $POD_CIDR, cluster dir $CLUSTER_DIR)"
