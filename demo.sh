#!/usr/bin/env bash
# nodelet's demo on a fresh Debian/Ubuntu machine, as root:
#   sudo ./demo.sh          install everything, start a private containerd and `nodelet run` on demo/manifests
#   sudo ./demo.sh stop     remove the demo pods, stop the agent and the private containerd
# Everything lives under /var/lib/nodelet (runtime, state, manifests) and /run/nodelet (API socket); nothing of an
# existing containerd or kubelet is touched.
set -euo pipefail
cd "$(dirname "$0")"
REPO=$(pwd)
BASE=/var/lib/nodelet
RUNTIME_DIR=$BASE/runtime
DEMO_DIR=$BASE/demo
VENV=${NODELET_VENV:-/opt/nodelet/venv}
SOCKET=/run/nodelet/nodelet.sock
LOG=/var/log/nodelet-demo.log
PIDFILE=/run/nodelet/demo.pid
[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root (containerd, network namespaces, iptables)" >&2; exit 2; }

stop_demo() {
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    rm -f "$DEMO_DIR"/manifests/*.yaml
    echo "waiting for the demo pods to stop…"
    for _ in $(seq 60); do
      # terminating pods are still listed until their containers and sandbox are gone
      [ "$("$VENV/bin/nodelet" get pods -A -o name --socket "$SOCKET" 2>/dev/null | wc -l)" = 0 ] && break
      sleep 1
    done
    kill "$(cat "$PIDFILE")" && rm -f "$PIDFILE"
  fi
  "$VENV/bin/nodelet" proxy cleanup || true   # the Service rules outlive the agent (as kube-proxy's) until cleaned
  "$VENV/bin/nodelet" runtime stop --dir "$RUNTIME_DIR" || true
}
if [ "${1:-}" = stop ]; then stop_demo; exit 0; fi

echo "==> installing packages"
PACKAGES=(containerd runc busybox-static containernetworking-plugins iptables nftables conntrack iproute2 gcc libc6-dev python3 python3-venv)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "==> installing nodelet into $VENV"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q "$REPO"
modprobe br_netfilter 2>/dev/null || true
sysctl -qw net.ipv4.ip_forward=1

echo "==> starting a private containerd and importing the local images"
"$VENV/bin/nodelet" runtime setup --no-install --dir "$RUNTIME_DIR"

echo "==> starting nodelet on $DEMO_DIR/manifests"
mkdir -p "$DEMO_DIR/manifests" /run/nodelet
cp "$REPO"/demo/manifests/*.yaml "$DEMO_DIR/manifests/"
cat > "$DEMO_DIR/config.yaml" <<CONF
apiVersion: nodelet.io/v1alpha1
kind: NodeletConfiguration
staticPodPath: $DEMO_DIR/manifests
containerRuntimeEndpoint: unix://$RUNTIME_DIR/containerd.sock
podCIDR: 10.244.0.0/24
cniConfDir: $RUNTIME_DIR/cni/net.d
cniBinDir: $RUNTIME_DIR/cni/bin
rootDir: $BASE/state
apiSocket: $SOCKET
CONF
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  echo "nodelet already running (pid $(cat "$PIDFILE"))"
else
  nohup "$VENV/bin/nodelet" run --config "$DEMO_DIR/config.yaml" >>"$LOG" 2>&1 &
  echo $! > "$PIDFILE"
fi
for _ in $(seq 60); do
  n=$("$VENV/bin/nodelet" get pods -o name --socket "$SOCKET" 2>/dev/null | wc -l || true)
  [ "$n" -ge 3 ] && break
  sleep 1
done
sleep 5
"$VENV/bin/nodelet" get pods -o wide --socket "$SOCKET"
cat <<MSG

nodelet is running (pid $(cat "$PIDFILE"), log $LOG). Look around:
  $VENV/bin/nodelet get pods -o wide            # kubectl-like table; -o json gives a v1 List
  $VENV/bin/nodelet get events                  # Pulled/Created/Started/BackOff/Unhealthy…
  ls /var/log/pods/ /var/log/containers/        # CRI-format container logs
  wget -qO- http://\$(nodelet get pod web-$(hostname | tr A-Z a-z) -o json | python3 -c 'import json,sys;print(json.load(sys.stdin)["status"]["podIP"])'):8080/
  edit or add a file in $DEMO_DIR/manifests/ — changes apply within a second
  sudo ./demo.sh stop                           # remove the demo pods, stop everything
MSG
