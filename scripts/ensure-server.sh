#!/usr/bin/env bash
# Makes sure a MariaDB (or MySQL) server binary is available for the sandbox: installs Debian's
# mariadb-server when it is missing and this user may install packages; otherwise says what to do.
set -euo pipefail
have_server() {
  command -v mariadbd >/dev/null 2>&1 || command -v mysqld >/dev/null 2>&1 ||
    [ -x /usr/sbin/mariadbd ] || [ -x /usr/sbin/mysqld ]
}
if have_server; then exit 0; fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "topogit: no MariaDB/MySQL server found and this is not a Debian-like system;" >&2
  echo "         install MariaDB 10.6+ or MySQL 8.0+ so that mariadbd or mysqld is on PATH, then rerun." >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "topogit: mariadb-server is not installed and installing it needs root." >&2
    echo "         run: sudo apt-get install -y mariadb-server   (then rerun this command)" >&2
    exit 1
  fi
fi
echo "topogit: installing mariadb-server from the OS packages (the sandbox runs its own servers; the system service is left stopped)"
export DEBIAN_FRONTEND=noninteractive
# The package would start a system-wide server on 127.0.0.1:3306; the sandbox neither needs nor wants it.
policy_set=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null && $SUDO chmod +x /usr/sbin/policy-rc.d && policy_set=1
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq mariadb-server >/dev/null
[ "$policy_set" = 1 ] && $SUDO rm -f /usr/sbin/policy-rc.d
have_server || { echo "topogit: mariadb-server installed but mariadbd not found" >&2; exit 1; }
echo "topogit: $(/usr/sbin/mariadbd --version 2>/dev/null || mariadbd --version)"
