# Sourced by the ensure-*.sh scripts: installs Debian packages when this user may (root, or
# password-less sudo), otherwise says in one line what to run. Never asks for a password.
#   apt_install PACKAGE WHY [BEFORE AFTER]  -> 0 when installed, 1 with a message otherwise;
#   BEFORE and AFTER (optional) run around the install, as root.

# Prints the prefix that runs a command as root ("" when this is root), or fails.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then echo ""; return 0; fi
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then echo "sudo -n"; return 0; fi
  return 1
}

apt_install() {
  local package=$1 why=$2 before=${3:-} after=${4:-} sudo status=0
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "topogit: $why needs $package; this is not a Debian-like system: install it, then rerun." >&2
    return 1
  fi
  if ! sudo=$(as_root); then
    echo "topogit: $why needs $package, and installing it needs root." >&2
    echo "         run: sudo apt-get install -y $package   (then rerun this command)" >&2
    return 1
  fi
  echo "topogit: installing $package from the OS packages ($why)"
  export DEBIAN_FRONTEND=noninteractive
  [ -n "$before" ] && $sudo sh -c "$before"
  $sudo apt-get install -y -qq "$package" >/dev/null 2>&1 || { $sudo apt-get update -qq && $sudo apt-get install -y -qq "$package" >/dev/null; } || status=$?
  [ -n "$after" ] && $sudo sh -c "$after"
  return "$status"
}

# apt_install_stopped PACKAGE UNIT WHY: apt_install for a package that ships a system service the
# tests do not want (they run their own processes): a policy-rc.d refuses every service start for
# the length of the install only (unless one was there already), and under systemd the unit, which
# the package enables, is disabled so it does not start at the next boot either.
apt_install_stopped() {
  local package=$1 unit=$2 why=$3 policy=/usr/sbin/policy-rc.d before after
  before="[ -e $policy ] || { printf '#!/bin/sh\nexit 101\n' > $policy && chmod +x $policy && touch $policy.topogit; }"
  after="[ -e $policy.topogit ] && rm -f $policy $policy.topogit || true"
  after="$after; if [ -d /run/systemd/system ]; then systemctl disable --now $unit >/dev/null 2>&1 || true; fi"
  apt_install "$package" "$why" "$before" "$after"
}
