#!/usr/bin/env bash
# The coordination tests (test/integration/etcd-sandbox.test.ts and those of src/coordination/)
# and the benchmarks start their own etcd members (loopback addresses, data dirs of their own, no
# root). Installs Debian's etcd-server when no `etcd` binary is on PATH or in /usr/bin (nor
# TOPOGIT_ETCD names one) and this user may install packages; otherwise says in one line what to do.
set -euo pipefail
have_etcd() {
  command -v etcd >/dev/null 2>&1 || [ -x /usr/bin/etcd ] ||
    { [ -n "${TOPOGIT_ETCD:-}" ] && [ -x "$TOPOGIT_ETCD" ]; }
}
if have_etcd; then exit 0; fi
. "$(dirname "$0")/lib/apt.sh"
# The package would start a system-wide service nobody asked for (and one that holds a port).
apt_install_stopped etcd-server etcd "the coordination tests (they run their own etcd members; the system service is left stopped)" || {
  echo "topogit: no etcd, so the coordination tests will fail: run apt-get install -y etcd-server as root (or set TOPOGIT_ETCD to an etcd binary), then rerun" >&2
  exit 1
}
have_etcd || { echo "topogit: etcd-server installed but no etcd binary on PATH or in /usr/bin" >&2; exit 1; }
echo "topogit: $( (command -v etcd >/dev/null 2>&1 && etcd --version || /usr/bin/etcd --version) 2>/dev/null | head -n 1)"
