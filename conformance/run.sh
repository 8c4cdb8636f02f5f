#!/usr/bin/env bash
# Runs the official MCP conformance suite (server scenarios required by a spec revision, default
# 2025-11-25) against mcpbus-everything, and exits non-zero if any check fails, in scored
# scenarios and in those the suite runs without scoring (extensions such as tasks, pending).
#
#   conformance/run.sh                   install what is missing, build, serve, run the suite
#   conformance/run.sh --install-only    install Node 22 and the suite, list the scenarios
#   conformance/run.sh --verbose         extra arguments go to `conformance server`
#
# Environment: REQUIREMENTS (spec revision, default 2025-11-25), CONFORMANCE_OUT (results
# directory; by default a temporary one, kept with the server log only when the run fails;
# each scenario writes its checks.json there),
# CARGO_TARGET_DIR (honoured). Needs npm (any version) and cargo; Node 22 itself comes from the
# npm registry as the binary package node-linux-<arch> and lives in conformance/.node
# (scripts/install-node.sh, shared with scripts/test.sh, pins its version).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"

SUITE_VERSION=0.2.0-alpha.12
REQUIREMENTS="${REQUIREMENTS:-2025-11-25}"

node_dir="$here/.node"
node="$node_dir/bin/node"
suite_dir="$here/node_modules/@modelcontextprotocol/conformance"

say() { printf 'run.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }

install_node() {
    # Shared with scripts/test.sh: the pinned Node 22 in conformance/.node.
    node="$("$root/scripts/install-node.sh")" || die "could not install Node"
    node_dir="$(dirname "$(dirname "$node")")"
}

suite_version() {
    "$node" -p "require('$suite_dir/package.json').version" 2>/dev/null || true
}

install_suite() {
    if [[ "$(suite_version)" == "$SUITE_VERSION" ]]; then
        return
    fi
    say "installing @modelcontextprotocol/conformance@$SUITE_VERSION into conformance/node_modules"
    # npm runs under Node 22 (first on PATH), so the suite's engine requirement is met.
    (cd "$here" && PATH="$node_dir/bin:$PATH" npm ci --no-audit --no-fund --loglevel=error)
    [[ "$(suite_version)" == "$SUITE_VERSION" ]] || die "the suite did not install"
}

conformance() {
    "$node" "$suite_dir/dist/index.js" "$@"
}

install_node
install_suite

if [[ "${1:-}" == "--install-only" ]]; then
    conformance list --server --requirements "$REQUIREMENTS"
    exit 0
fi

say "building mcpbus-everything"
(cd "$root" && cargo build -j2 -p mcpbus-conformance --bin mcpbus-everything)
binary="${CARGO_TARGET_DIR:-$root/target}/debug/mcpbus-everything"
[[ -x "$binary" ]] || die "no binary at $binary"

work="$(mktemp -d)"
out="${CONFORMANCE_OUT:-$work/results}"
mkdir -p "$out"
server_log="$work/server.log"
server_pid=""
keep_work=1
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [[ $keep_work -eq 0 ]]; then
        rm -rf "$work"
    fi
}
trap cleanup EXIT

# PORT=0: the server takes a free loopback port and prints the URL it listens on.
PORT=0 MCPBUS_LOG="${MCPBUS_LOG:-info}" "$binary" >"$server_log" 2>&1 &
server_pid=$!
url=""
for _ in $(seq 1 300); do
    url="$(sed -n 's#^mcpbus-everything listening on \(http://[^ ]*\)$#\1#p' "$server_log" | head -n 1)"
    [[ -n "$url" ]] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        cat "$server_log" >&2
        die "mcpbus-everything exited before listening"
    fi
    sleep 0.1
done
[[ -n "$url" ]] || { cat "$server_log" >&2; die "mcpbus-everything did not start listening within 30 s"; }
say "serving at $url; running the $REQUIREMENTS requirement set"

status=0
conformance server --url "$url" --requirements "$REQUIREMENTS" -o "$out" "$@" \
    | tee "$work/suite.log" || status=$?

echo
summary="$(grep -E '^Total: ' "$work/suite.log" | tail -n 1 || true)"
say "summary (requirements $REQUIREMENTS): ${summary:-no summary line; see above}"
if [[ $status -ne 0 ]]; then
    say "results: $out   server log: $server_log"
    say "FAILED (suite exit code $status)"
    exit "$status"
fi
[[ -n "$summary" ]] || die "the suite printed no summary"
# The suite fails a run only for scored scenarios; mcpbus holds the extension (tasks) and
# pending ones to the same bar.
failed_checks="$(sed -n 's/^Total: [0-9]* passed, \([0-9]*\) failed.*/\1/p' <<<"$summary")"
if [[ "${failed_checks:-0}" != 0 ]]; then
    say "results: $out   server log: $server_log"
    die "FAILED: $failed_checks check(s) failed in unscored (extension or pending) scenarios"
fi
if [[ -n "${CONFORMANCE_OUT:-}" ]]; then
    say "results: $out"
fi
keep_work=0
say "passed"
