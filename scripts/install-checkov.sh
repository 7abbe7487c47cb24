#!/usr/bin/env bash
# Install checkov (a policy scanner for Kubernetes manifests, from PyPI) into a venv of its own.
#
# checkov pins many libraries of its own; kept out of the project's .venv, it can never change what
# popsync runs or is tested with. The venv lives in ~/.cache/popsync/tools/checkov-<version>/ and is made
# once: later runs find it and exit at once.
#
# Usage: scripts/install-checkov.sh        (idempotent; PYTHON=... to choose the interpreter)
# Used by: tests/integration/test_deploy_k8s.py (skipped without checkov, failed under CI).
set -euo pipefail

CHECKOV_VERSION="${CHECKOV_VERSION:-3.3.30}"
TOOLS_DIR="${POPSYNC_TOOLS_DIR:-$HOME/.cache/popsync/tools}"
VENV="$TOOLS_DIR/checkov-$CHECKOV_VERSION"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"

if [ -x "$VENV/bin/checkov" ] && [ -e "$VENV/.complete" ]; then
    echo "checkov already installed: $VENV/bin/checkov ($("$VENV/bin/checkov" --version 2>/dev/null))"
    exit 0
fi

start=$(date +%s)
rm -rf "$VENV" # a half-made venv from an interrupted run
mkdir -p "$TOOLS_DIR"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
touch "$VENV/.complete"
end=$(date +%s)
echo "install-checkov: $VENV/bin/checkov ($("$VENV/bin/checkov" --version 2>/dev/null)) in $((end - start)) s"
