#!/usr/bin/env bash
# The routing tests (test/integration/haproxy.test.ts) and the sandbox's router start their own
# HAProxy processes (loopback addresses, a config file of their own, no root). Installs Debian's
# haproxy when no `haproxy` binary is on PATH or in /usr/sbin (nor TOPOGIT_HAPROXY names one) and
# this user may install packages; otherwise says in one line what to do.
set -euo pipefail
have_haproxy() {
  command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] ||
    { [ -n "${TOPOGIT_HAPROXY:-}" ] && [ -x "$TOPOGIT_HAPROXY" ]; }
}
if have_haproxy; then exit 0; fi
. "$(dirname "$0")/lib/apt.sh"
# The package would start a system-wide service nobody asked for (and one that holds a port).
apt_install_stopped haproxy haproxy "the routing tests (they run their own haproxy; the system service is left stopped)" || {
  echo "topogit: no haproxy, so the routing tests will fail: run apt-get install -y haproxy as root (or set TOPOGIT_HAPROXY to an haproxy binary), then rerun" >&2
  exit 1
}
have_haproxy || { echo "topogit: haproxy installed but no haproxy binary on PATH or in /usr/sbin" >&2; exit 1; }
echo "topogit: $( (command -v haproxy >/dev/null 2>&1 && haproxy -v || /usr/sbin/haproxy -v) 2>/dev/null | head -n 1)"
