#!/usr/bin/env bash
# Runs the whole mcpbus test suite: `cargo test --workspace -j2` (unit, integration and doc tests)
# and the official MCP conformance suite in server mode (both eras: --requirements 2025-11-25 and
# 2026-07-28) and client mode (conformance/run.sh,
# conformance/run-client.sh),
# after installing what the tests need when it is missing:
#
#   - .tools/py (gitignored): a Python venv made with `python3 -m venv`, holding the official MCP
#     Python SDK `mcp==1.30.0` and its dependencies, pinned in tests/interop/requirements.txt.
#     Used by crates/mcpbus-cli/tests/interop_python.rs; the same file pins `standardwebhooks`,
#     the official Standard Webhooks library, with which crates/mcpbus/tests/webhooks.rs
#     verifies webhook signatures (tests/interop/verify_webhooks.py). If `python3 -m venv` does not work
#     (Debian without python3-venv), the Debian package python3-venv is installed with apt-get.
#   - MCPBUS_PYTHON is exported as that venv's python, unless already set by the caller (then
#     that interpreter is used as is and nothing is installed).
#   - Node 22 in conformance/.node (gitignored; scripts/install-node.sh, shared with
#     conformance/run.sh, fetches the pinned binary from the npm registry), exported as
#     MCPBUS_NODE unless the caller set it; and tests/interop/ts/node_modules (gitignored): the
#     official MCP TypeScript SDK, `npm ci` from tests/interop/ts/package-lock.json, for
#     crates/mcpbus-cli/tests/interop_ts.rs. Needs npm on PATH only when something is missing.
#   - redis-server (the Debian package redis-server, apt-get) for the Redis tests
#     (crates/mcpbus-cli/tests/redis_cluster.rs, crates/mcpbus-redis/tests), which start their
#     own server on a free loopback port and stop it; a Redis already running is never used.
#
# Idempotent: once installed, nothing is downloaded again until requirements.txt (or
# tests/interop/ts/package-lock.json) changes.
# Quiet when everything is present. Extra arguments go to `cargo test`, e.g.
#   bash scripts/test.sh -p mcpbus-cli --test interop_python
# Runnable from any directory.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.tools/py"
REQUIREMENTS="$ROOT/tests/interop/requirements.txt"
STAMP="$VENV/.mcpbus-requirements.sha256"
PYTHON="${PYTHON:-python3}"
TS_DIR="$ROOT/tests/interop/ts"
TS_STAMP="$TS_DIR/node_modules/.mcpbus-lock.sha256"

log() { printf 'scripts/test.sh: %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        log "need root to run: $*"
        return 1
    fi
}

make_venv() {
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    if ! "$PYTHON" -m venv "$VENV" >/dev/null 2>&1; then
        log "'$PYTHON -m venv' failed; installing Debian's python3-venv"
        rm -rf "$VENV"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        "$PYTHON" -m venv "$VENV"
    fi
}

setup_python() {
    local want have=""
    want="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
    [ -f "$STAMP" ] && have="$(cat "$STAMP")"
    if [ -x "$VENV/bin/python" ] && [ "$want" = "$have" ] &&
        "$VENV/bin/python" -c 'import mcp.client.stdio, standardwebhooks' >/dev/null 2>&1; then
        return 0
    fi
    if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
        log "creating the Python venv $VENV"
        make_venv
    fi
    log "installing the interop test's Python packages (mcp, pinned) into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        --require-virtualenv -r "$REQUIREMENTS"
    "$VENV/bin/python" -c 'import mcp.client.stdio, standardwebhooks'
    printf '%s\n' "$want" >"$STAMP"
}

setup_ts() {
    local want have=""
    want="$(sha256sum "$TS_DIR/package-lock.json" | cut -d' ' -f1)"
    [ -f "$TS_STAMP" ] && have="$(cat "$TS_STAMP")"
    if [ "$want" = "$have" ] && [ -f "$TS_DIR/node_modules/@modelcontextprotocol/sdk/package.json" ]; then
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        log "npm is needed to install tests/interop/ts (npm ci)"
        return 1
    fi
    log "installing the TypeScript interop test's packages (npm ci in tests/interop/ts)"
    local path="$PATH"
    # npm runs under the pinned Node (first on PATH) when MCPBUS_NODE is a path.
    case "$MCPBUS_NODE" in */*) path="$(dirname "$MCPBUS_NODE"):$PATH" ;; esac
    (cd "$TS_DIR" && PATH="$path" npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    printf '%s\n' "$want" >"$TS_STAMP"
}

setup_redis() {
    command -v redis-server >/dev/null 2>&1 && return 0
    log "installing redis-server (Debian package) for the Redis tests"
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; then
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    fi
    # The package may start a system service on 6379; the tests never use it.
    command -v redis-server >/dev/null
}

setup_redis

if [ -z "${MCPBUS_PYTHON:-}" ]; then
    setup_python
    export MCPBUS_PYTHON="$VENV/bin/python"
fi

if [ -z "${MCPBUS_NODE:-}" ]; then
    MCPBUS_NODE="$("$ROOT/scripts/install-node.sh")"
    export MCPBUS_NODE
fi
setup_ts

cd "$ROOT"
cargo test --workspace -j2 "$@"

# The official conformance suite, server and client modes (skipped when cargo test was given
# extra arguments, i.e. a partial run, or with MCPBUS_SKIP_CONFORMANCE=1).
if [ "$#" -eq 0 ] && [ -z "${MCPBUS_SKIP_CONFORMANCE:-}" ]; then
    log "conformance suite, server mode (--requirements 2025-11-25)"
    bash "$ROOT/conformance/run.sh"
    log "conformance suite, server mode (--requirements 2026-07-28)"
    REQUIREMENTS=2026-07-28 bash "$ROOT/conformance/run.sh"
    log "conformance suite, client mode (the scenarios mcpbus's HTTP client supports)"
    SPEC_VERSION=2025-11-25 bash "$ROOT/conformance/run-client.sh"
    SPEC_VERSION=2026-07-28 bash "$ROOT/conformance/run-client.sh"
fi
