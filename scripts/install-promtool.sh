#!/usr/bin/env bash
# Install promtool (Prometheus's config/rules checker) if it is missing.
#
# Source: Debian's `prometheus` package, which ships /usr/bin/promtool beside the server.
# Needs root (apt-get). The package also brings a `prometheus` service; this script keeps
# the service from being started by the install (policy-rc.d), so no server is left running
# on :9090 — the checks only need the promtool binary.
#
# Usage: scripts/install-promtool.sh        (idempotent; exits 0 at once when promtool is there)
# Used by: tests/integration/test_deploy_configs.py (skipped without promtool, failed under CI).
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then
    echo "promtool already installed: $(command -v promtool) ($(promtool --version 2>&1 | head -n 1))"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    cat >&2 <<'EOF'
install-promtool: promtool is missing and installing it needs root.
  Run as root:   sudo scripts/install-promtool.sh
  or by hand:    sudo apt-get update && sudo apt-get install -y --no-install-recommends prometheus
  (Debian/Ubuntu's `prometheus` package ships /usr/bin/promtool.)
EOF
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-promtool: no apt-get here; install promtool (part of Prometheus) with your system's package manager" >&2
    exit 1
fi

# Keep the prometheus service from starting during the install (Debian's policy-rc.d convention).
# An existing policy-rc.d (as in Docker images) is left untouched.
created_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# temporary, from popsync scripts/install-promtool.sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
fi
cleanup() {
    if [ -n "$created_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
start=$(date +%s)
echo "install-promtool: apt-get update"
apt-get update -qq
echo "install-promtool: apt-get install prometheus (for /usr/bin/promtool)"
apt-get install -y -qq --no-install-recommends prometheus >/dev/null
end=$(date +%s)

if ! command -v promtool >/dev/null 2>&1; then
    echo "install-promtool: the prometheus package was installed but promtool is not on PATH" >&2
    exit 1
fi
echo "install-promtool: $(command -v promtool) ($(promtool --version 2>&1 | head -n 1)) in $((end - start)) s"
