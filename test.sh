#!/usr/bin/env bash
# Runs nodelet's whole test suite on a fresh Debian/Ubuntu machine, as root: installs what the tests need
# (apt + pip), then pytest. The tests start their own private containerd (under /var/lib/nodelet-test),
# network namespaces and rules, and clean up after themselves. Any skipped test fails the run.
set -euo pipefail
cd "$(dirname "$0")"
if [ "$(id -u)" != 0 ]; then
  echo "test.sh: run as root (the integration tests use containerd, network namespaces and iptables)" >&2
  exit 2
fi
PACKAGES=(containerd runc iptables nftables conntrack iproute2 busybox-static containernetworking-plugins podman
          gcc libc6-dev procps psmisc ruby systemd openssl)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
PYTHON=${PYTHON:-python3}
"$PYTHON" -m pip install -q -e '.[test]'
modprobe br_netfilter 2>/dev/null || true
export NODELET_FORBID_SKIPS=1
exec "$PYTHON" -m pytest -p no:cacheprovider -q -ra --durations=15 "$@"
