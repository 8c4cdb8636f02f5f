#!/usr/bin/env bash
# Runs the whole mcpbus test suite: `cargo test --workspace -j2` (unit, integration and doc tests)
# and the official MCP conformance suite in server mode (both eras: --requirements 2025-11-25 and
# 2026-07-28) and client mode (conformance/run.sh,
# conformance/run-client.sh),
# after installing what the tests need when it is missing:
#
#   - .tools/py (gitignored): a Python venv made with `python3 -m venv`, holding the official MCP
#     Python SDK `mcp==1.30.0` and its dependencies, pinned in tests/interop/requirements.txt.
#     Used by crates/mcpbus-cli/tests/interop_python.rs, interop_python_http.rs (the
#     handshake era) and interop_bridge.rs (the tool bridge); the same file pins `standardwebhooks`, the official Standard Webhooks
#     library, with which crates/mcpbus/tests/webhooks.rs verifies webhook signatures
#     (tests/interop/verify_webhooks.py). If `python3 -m venv` does not work (Debian without
#     python3-venv), the Debian package python3-venv is installed with apt-get.
#   - .tools/py-mcp2 (gitignored): a second venv, with the Python SDK 2.x (`mcp==2.3.0`, pinned
#     with its dependencies in tests/interop/requirements-mcp2.txt), for
#     crates/mcpbus-cli/tests/interop_modern.rs (the 2026-07-28 era), interop_bridge.rs and
#     docs_clients.rs (the examples of docs/clients.md). Both versions are tested,
#     and one venv cannot hold both.
#   - MCPBUS_PYTHON and MCPBUS_PYTHON_MCP2 are exported as those venvs' python, each unless
#     already set by the caller (then that interpreter is used as is and nothing is installed
#     for it).
#   - Node 22 in conformance/.node (gitignored; scripts/install-node.sh, shared with
#     conformance/run.sh, fetches the pinned binary from the npm registry), exported as
#     MCPBUS_NODE unless the caller set it; and, `npm ci` from their package-lock.json, the
#     official MCP TypeScript SDKs: tests/interop/ts/node_modules (`@modelcontextprotocol/sdk`
#     1.x, for crates/mcpbus-cli/tests/interop_ts.rs) and tests/interop/ts-modern/node_modules
#     (`@modelcontextprotocol/client` 2.x, for interop_modern.rs), both gitignored; both also
#     for interop_ts_resources.rs (the resource bridge) and docs_clients.rs. Needs npm on
#     PATH only when something is missing.
#   - tests/auth/node_modules (gitignored; `npm ci` from tests/auth/package-lock.json):
#     `oidc-provider`, panva's certified OpenID/OAuth 2.1 authorization server, run on loopback
#     by tests/auth/provider.mjs for the authorization tests (crates/mcpbus-testkit/src/oidc.rs,
#     crates/mcpbus-testkit/tests/oidc_harness.rs, crates/mcpbus-cli/tests/auth_oidc.rs,
#     auth_oidc_replicas.rs, interop_oauth.rs); see tests/auth/README.md.
#   - redis-server (the Debian package redis-server, apt-get) for the Redis tests
#     (crates/mcpbus-cli/tests/redis_cluster.rs, crates/mcpbus-redis/tests), which start their
#     own server on a free loopback port and stop it; a Redis already running is never used.
#   - prometheus (the Debian package prometheus, apt-get) for
#     crates/mcpbus-cli/tests/metrics_prometheus.rs, which starts its own Prometheus on a free
#     loopback port scraping the test's `mcpbus serve`; exported as MCPBUS_PROMETHEUS unless the
#     caller set it. A Prometheus already running is never used.
#   - chromium (the Debian package chromium, apt-get) for
#     crates/mcpbus-cli/tests/dashboard_chromium.rs, which drives the dashboard headless with
#     playwright-core (`npm ci` in tests/dashboard, pinned in its package-lock.json; it
#     downloads no browser); exported as MCPBUS_CHROMIUM unless the caller set it.
#
# Idempotent: once installed, nothing is downloaded again until a requirements file (or a
# package-lock.json under tests/interop, tests/dashboard or tests/auth) changes.
# Quiet when everything is present. Extra arguments go to `cargo test`, e.g.
#   bash scripts/test.sh -p mcpbus-cli --test interop_python
# Runnable from any directory.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INTEROP="$ROOT/tests/interop"
PYTHON="${PYTHON:-python3}"

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

# make_venv VENV: a fresh venv at VENV.
make_venv() {
    local venv="$1"
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    if ! "$PYTHON" -m venv "$venv" >/dev/null 2>&1; then
        log "'$PYTHON -m venv' failed; installing Debian's python3-venv"
        rm -rf "$venv"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        "$PYTHON" -m venv "$venv"
    fi
}

# setup_python VENV REQUIREMENTS MODULE: VENV holds exactly REQUIREMENTS (a stamp in the venv
# remembers which), checked by importing MODULE.
setup_python() {
    local venv="$1" requirements="$2" module="$3"
    local stamp="$venv/.mcpbus-requirements.sha256" want have=""
    want="$(sha256sum "$requirements" | cut -d' ' -f1)"
    [ -f "$stamp" ] && have="$(cat "$stamp")"
    if [ -x "$venv/bin/python" ] && [ "$want" = "$have" ] &&
        "$venv/bin/python" -c "import $module" >/dev/null 2>&1; then
        return 0
    fi
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
        log "creating the Python venv $venv"
        make_venv "$venv"
    fi
    log "installing the Python packages of ${requirements#"$ROOT"/} (pinned) into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        --require-virtualenv -r "$requirements"
    "$venv/bin/python" -c "import $module"
    printf '%s\n' "$want" >"$stamp"
}

# setup_npm DIR PACKAGE: `npm ci` in DIR unless its node_modules holds PACKAGE and matches
# DIR/package-lock.json (a stamp in node_modules remembers which).
setup_npm() {
    local dir="$1" package="$2"
    local stamp="$dir/node_modules/.mcpbus-lock.sha256" want have=""
    want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
    [ -f "$stamp" ] && have="$(cat "$stamp")"
    if [ "$want" = "$have" ] && [ -f "$dir/node_modules/$package/package.json" ]; then
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        log "npm is needed to install ${dir#"$ROOT"/} (npm ci)"
        return 1
    fi
    log "installing the packages of ${dir#"$ROOT"/} (npm ci)"
    local path="$PATH"
    # npm runs under the pinned Node (first on PATH) when MCPBUS_NODE is a path.
    case "$MCPBUS_NODE" in */*) path="$(dirname "$MCPBUS_NODE"):$PATH" ;; esac
    (cd "$dir" && PATH="$path" npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    printf '%s\n' "$want" >"$stamp"
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

# setup_prometheus: Debian's prometheus binary, exported as MCPBUS_PROMETHEUS.
setup_prometheus() {
    if [ -n "${MCPBUS_PROMETHEUS:-}" ]; then
        return 0
    fi
    if ! command -v prometheus >/dev/null 2>&1; then
        log "installing prometheus (Debian package) for the metrics test"
        if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; then
            as_root apt-get update -qq
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
        fi
    fi
    # The package may start a system service on 9090; the test never uses it.
    MCPBUS_PROMETHEUS="$(command -v prometheus)"
    export MCPBUS_PROMETHEUS
}

# setup_chromium: Debian's chromium, exported as MCPBUS_CHROMIUM.
setup_chromium() {
    if [ -n "${MCPBUS_CHROMIUM:-}" ]; then
        return 0
    fi
    if ! command -v chromium >/dev/null 2>&1; then
        log "installing chromium (Debian package) for the dashboard test"
        if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; then
            as_root apt-get update -qq
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
        fi
    fi
    MCPBUS_CHROMIUM="$(command -v chromium)"
    export MCPBUS_CHROMIUM
}

setup_redis
setup_prometheus
setup_chromium

if [ -z "${MCPBUS_PYTHON:-}" ]; then
    setup_python "$ROOT/.tools/py" "$INTEROP/requirements.txt" "mcp.client.stdio, standardwebhooks"
    export MCPBUS_PYTHON="$ROOT/.tools/py/bin/python"
fi
if [ -z "${MCPBUS_PYTHON_MCP2:-}" ]; then
    setup_python "$ROOT/.tools/py-mcp2" "$INTEROP/requirements-mcp2.txt" mcp.client.subscriptions
    export MCPBUS_PYTHON_MCP2="$ROOT/.tools/py-mcp2/bin/python"
fi

if [ -z "${MCPBUS_NODE:-}" ]; then
    MCPBUS_NODE="$("$ROOT/scripts/install-node.sh")"
    export MCPBUS_NODE
fi
setup_npm "$INTEROP/ts" @modelcontextprotocol/sdk
setup_npm "$INTEROP/ts-modern" @modelcontextprotocol/client
setup_npm "$ROOT/tests/dashboard" playwright-core
setup_npm "$ROOT/tests/auth" oidc-provider

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
