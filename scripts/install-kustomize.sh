#!/usr/bin/env bash
# Make a kustomize renderer available for the Kubernetes manifest tests (deploy/k8s/).
#
# `kubectl kustomize` is enough when kubectl is installed (it embeds kustomize). Otherwise this builds
# the kustomize command from its Go module (sigs.k8s.io/kustomize/kustomize/v5, fetched from the Go
# module proxy) into ~/.cache/popsync/bin/kustomize, once: later runs find it there and exit at once.
# Needs Go (1.22+). The version is pinned: one that builds with the machine's Go.
#
# Usage: scripts/install-kustomize.sh        (idempotent)
# Used by: tests/integration/test_deploy_k8s.py (skipped without a renderer, failed under CI).
set -euo pipefail

KUSTOMIZE_VERSION="${KUSTOMIZE_VERSION:-v5.7.1}"
BIN_DIR="${POPSYNC_TOOLS_BIN:-$HOME/.cache/popsync/bin}"

if [ -x "$BIN_DIR/kustomize" ]; then
    echo "kustomize already built: $BIN_DIR/kustomize ($("$BIN_DIR/kustomize" version 2>&1 | head -n 1))"
    exit 0
fi
if command -v kustomize >/dev/null 2>&1; then
    echo "kustomize already installed: $(command -v kustomize)"
    exit 0
fi
if command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
    echo "kubectl kustomize is available: $(command -v kubectl) ($(kubectl version --client 2>/dev/null | grep -i kustomize || true))"
    exit 0
fi
if ! command -v go >/dev/null 2>&1; then
    echo "install-kustomize: neither kubectl nor kustomize nor Go is installed; install one of them" >&2
    exit 1
fi

mkdir -p "$BIN_DIR"
start=$(date +%s)
echo "install-kustomize: go install sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION into $BIN_DIR"
GOBIN="$BIN_DIR" GOFLAGS=-mod=mod go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
end=$(date +%s)
echo "install-kustomize: $BIN_DIR/kustomize ($("$BIN_DIR/kustomize" version 2>&1 | head -n 1)) in $((end - start)) s"
