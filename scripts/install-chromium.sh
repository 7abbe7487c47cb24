#!/usr/bin/env bash
# Install Debian's Chromium (/usr/bin/chromium) if it is missing, for the dashboard's browser test.
#
# Playwright (the Python package) drives this system browser through `executable_path`; popsync never
# runs `playwright install`, whose browser downloads do not come from a package registry.
# Needs root (apt-get). About 100 MB installed with its libraries.
#
# Usage: scripts/install-chromium.sh        (idempotent; exits 0 at once when /usr/bin/chromium is there)
# Used by: tests/integration/test_dashboard.py (skipped without chromium, failed under CI).
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    echo "chromium already installed: $CHROMIUM ($("$CHROMIUM" --version 2>/dev/null | head -n 1))"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    cat >&2 <<'MSG'
install-chromium: /usr/bin/chromium is missing and installing it needs root.
  Run as root:   sudo scripts/install-chromium.sh
  or by hand:    sudo apt-get update && sudo apt-get install -y --no-install-recommends chromium
  (Debian's `chromium` package; on Ubuntu it is a snap, so use a Debian machine or image for this test.)
MSG
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium: no apt-get here; install Chromium as $CHROMIUM with your system's package manager" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
start=$(date +%s)
echo "install-chromium: apt-get update"
apt-get update -qq
echo "install-chromium: apt-get install chromium"
apt-get install -y -qq --no-install-recommends chromium >/dev/null
end=$(date +%s)

if [ ! -x "$CHROMIUM" ]; then
    echo "install-chromium: the chromium package was installed but $CHROMIUM is not there" >&2
    exit 1
fi
echo "install-chromium: $CHROMIUM ($("$CHROMIUM" --version 2>/dev/null | head -n 1)) in $((end - start)) s"
