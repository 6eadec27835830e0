#!/usr/bin/env bash
# Makes sure a MariaDB (or MySQL) server binary is available for the sandbox: installs Debian's
# mariadb-server when it is missing and this user may install packages; otherwise says what to do.
set -euo pipefail
have_server() {
  command -v mariadbd >/dev/null 2>&1 || command -v mysqld >/dev/null 2>&1 ||
    [ -x /usr/sbin/mariadbd ] || [ -x /usr/sbin/mysqld ]
}
if have_server; then exit 0; fi
. "$(dirname "$0")/lib/apt.sh"
# The package would start a system-wide server on 127.0.0.1:3306; the sandbox neither needs nor
# wants it.
apt_install_stopped mariadb-server mariadb "the sandbox (it runs its own servers; the system service is left stopped)" || exit 1
have_server || { echo "topogit: mariadb-server installed but mariadbd not found" >&2; exit 1; }
echo "topogit: $(/usr/sbin/mariadbd --version 2>/dev/null || mariadbd --version)"
