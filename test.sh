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
PACKAGES=(containerd runc iptables nftables conntrack iproute2 busybox-static containernetworking-plugins
          gcc libc6-dev procps psmisc ruby systemd openssl
          podman  # a second real CNI client (tests/integration/cni/test_podman.py)
          etcd-server etcd-client  # cluster mode tests run their own etcd members on loopback
          prometheus)  # prometheus: tests/e2e/test_dropin.py scrapes the agent with the real server
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
# type check first (seconds): strictness per package in pyproject.toml [tool.mypy]
"$PYTHON" -m mypy
export NODELET_FORBID_SKIPS=1
# Python 3.10 (Ubuntu 22.04's): the unit suite also runs under it, in a venv cached by the hash of pyproject.toml.
PY310=${PY310:-$(ls -d "$HOME"/.pyenv/versions/3.10*/bin/python 2>/dev/null | sort -V | tail -1)}
if [ -z "$PY310" ] || ! "$PY310" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
  echo "test.sh: no Python 3.10 interpreter (set PY310=/path/to/python3.10)" >&2
  exit 2
fi
VENV310=${VENV310:-/var/cache/nodelet/py310-venv}
stamp="$(sha256sum pyproject.toml | cut -c1-16)"
if [ "$(cat "$VENV310/.nodelet-stamp" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$VENV310"
  "$PY310" -m venv "$VENV310"
  "$VENV310/bin/pip" install -q '.[test]'
  echo "$stamp" > "$VENV310/.nodelet-stamp"
fi
echo "test.sh: unit suite under $("$VENV310/bin/python" --version)"
PYTHONPATH="$PWD" "$VENV310/bin/python" -m pytest -p no:cacheprovider -q -x tests/unit \
  --deselect tests/unit/test_packaging.py  # the venv holds a built copy; packaging is checked by the main run
exec "$PYTHON" -m pytest -p no:cacheprovider -q -ra --durations=15 "$@"
