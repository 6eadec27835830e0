#!/usr/bin/env bash
# The status page's browser tests (test/integration/page-browser.test.ts) and `npm run bench:page` drive the system's Chromium through
# puppeteer-core, which never downloads a browser. Installs Debian's chromium when neither
# `chromium` nor `chromium-browser` is on PATH (nor TOPOGIT_CHROMIUM names a binary) and this user
# may install packages; otherwise says in one line what to do.
set -euo pipefail
have_chromium() {
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 ||
    { [ -n "${TOPOGIT_CHROMIUM:-}" ] && [ -x "$TOPOGIT_CHROMIUM" ]; }
}
if have_chromium; then exit 0; fi
. "$(dirname "$0")/lib/apt.sh"
apt_install chromium "the status page's browser tests" || {
  echo "topogit: no chromium, so the browser tests will fail: run apt-get install -y chromium as root (or set TOPOGIT_CHROMIUM to a Chromium binary), then rerun" >&2
  exit 1
}
have_chromium || { echo "topogit: chromium installed but no chromium binary on PATH" >&2; exit 1; }
echo "topogit: $(chromium --version 2>/dev/null || chromium-browser --version 2>/dev/null)"
