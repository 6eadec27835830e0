#!/usr/bin/env bash
# The fault drills need nftables (the partition drills cut the daemon off on loopback). Installs
# Debian's nftables when `nft` is missing and this user may install packages; otherwise says what
# to do. The MariaDB server comes from ensure-server.sh.
set -euo pipefail
here="$(dirname "$0")"
bash "$here/ensure-server.sh"
if command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ]; then exit 0; fi
. "$here/lib/apt.sh"
apt_install nftables "the partition drills"
command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || { echo "topogit: nftables installed but nft not found" >&2; exit 1; }
