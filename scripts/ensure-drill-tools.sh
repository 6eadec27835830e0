#!/usr/bin/env bash
# The fault drills need nftables (the partition drill cuts the daemon off from the primary on
# loopback). Installs Debian's nftables when `nft` is missing and this user may install packages;
# otherwise says what to do. The MariaDB server comes from ensure-server.sh.
set -euo pipefail
bash "$(dirname "$0")/ensure-server.sh"
if command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ]; then exit 0; fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "topogit: the partition drill needs nftables (nft); install it, then rerun." >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "topogit: the partition drill needs nftables and installing it needs root." >&2
    echo "         run: sudo apt-get install -y nftables   (then rerun)" >&2
    exit 1
  fi
fi
echo "topogit: installing nftables from the OS packages (for the partition drill)"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -qq nftables >/dev/null 2>&1 || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq nftables >/dev/null; }
command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || { echo "topogit: nftables installed but nft not found" >&2; exit 1; }
