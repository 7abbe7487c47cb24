#!/usr/bin/env bash
# Install the PostgreSQL server binaries (initdb, pg_ctl, postgres) if they are missing.
#
# Source: Debian's `postgresql` package (/usr/lib/postgresql/<major>/bin). Needs root (apt-get). The
# package's own cluster service is kept from starting (policy-rc.d): the tests start their own server on a
# free 127.0.0.1 port in a temporary directory (popsync/postgres/local.py) and need only the binaries.
#
# Usage: scripts/install-postgres.sh        (idempotent; exits 0 at once when the binaries are there)
# Used by: the PostgreSQL store tests (tests/integration/test_store_contract.py and others), which skip
# without a server — and fail under CI=1, as this script does when it cannot install.
set -euo pipefail

found_bin() {
    if [ -n "${POPSYNC_PG_BIN:-}" ] && [ -x "$POPSYNC_PG_BIN/initdb" ]; then echo "$POPSYNC_PG_BIN"; return 0; fi
    if command -v initdb >/dev/null 2>&1; then
        local on_path
        on_path=$(dirname "$(readlink -f "$(command -v initdb)")")
        # a dangling symlink on PATH (the package removed) is not a server
        if [ -x "$on_path/initdb" ] && [ -x "$on_path/postgres" ]; then echo "$on_path"; return 0; fi
    fi
    local newest
    newest=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$newest" ] && [ -x "$newest/initdb" ]; then echo "$newest"; return 0; fi
    return 1
}

fail() {
    echo "install-postgres: $*" >&2
    if [ -n "${CI:-}" ]; then echo "install-postgres: CI is set: the PostgreSQL tests cannot run without a server" >&2; fi
    exit 1
}

if bin=$(found_bin); then
    echo "PostgreSQL server binaries already installed: $bin ($("$bin/postgres" --version))"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    fail "the PostgreSQL server binaries are missing and installing them needs root.
  Run as root:   sudo scripts/install-postgres.sh
  or by hand:    sudo apt-get update && sudo apt-get install -y --no-install-recommends postgresql
  or point POPSYNC_PG_BIN at a folder holding initdb, pg_ctl and postgres."
fi

command -v apt-get >/dev/null 2>&1 || fail "no apt-get here; install PostgreSQL's server with your system's package manager"

created_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# temporary, from popsync scripts/install-postgres.sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
fi
cleanup() {
    if [ -n "$created_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
start=$(date +%s)
echo "install-postgres: apt-get update"
apt-get update -qq || fail "apt-get update failed"
echo "install-postgres: apt-get install postgresql"
apt-get install -y -qq --no-install-recommends postgresql >/dev/null || fail "apt-get install postgresql failed"
end=$(date +%s)

bin=$(found_bin) || fail "the postgresql package was installed but no initdb was found under /usr/lib/postgresql"
echo "install-postgres: $bin ($("$bin/postgres" --version)) in $((end - start)) s"
