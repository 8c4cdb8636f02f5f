#!/usr/bin/env bash
# Runs the official MCP conformance suite in client mode against mcpbus-conformance-client (the
# mcpbus Client over the Streamable HTTP client transport), one `conformance client --scenario S`
# per supported scenario, and exits non-zero if any of them fails.
#
#   conformance/run-client.sh                  install what is missing, build, run every
#                                              supported scenario
#   conformance/run-client.sh sse-retry ...    run only these scenarios
#
# The supported scenarios are the ones `mcpbus-conformance-client --list $SPEC_VERSION` prints
# (2025-11-25 and 2026-07-28 have different sets; both include the scored OAuth scenarios and
# the OAuth extensions the client passes, which run with --force); NOTES.md ("Client mode") says
# which are left out and why. Each scenario is run on its
# own rather than through `--requirements`, because single-scenario runs are the strict ones:
# they also fail on WARNING checks, on a client timeout and on a non-zero client exit, which a
# suite run ignores.
#
# Environment: SPEC_VERSION (the revision each scenario runs at; default REQUIREMENTS, as for
# run.sh, else 2025-11-25; the client's era follows it),
# CONFORMANCE_OUT (results directory; by default a temporary one, kept only when a scenario
# fails; each scenario writes checks.json, stdout.txt and stderr.txt there), MCPBUS_LOG (log
# filter of the client, default warn), CARGO_TARGET_DIR (honoured). Node 22 and the suite are
# installed by `run.sh --install-only`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"

# REQUIREMENTS counts only when it names a revision (scripts elsewhere use the name for files).
if [[ -z "${SPEC_VERSION:-}" && "${REQUIREMENTS:-}" =~ ^([0-9]{4}-[0-9]{2}-[0-9]{2}|draft)$ ]]; then
    SPEC_VERSION="$REQUIREMENTS"
fi
SPEC_VERSION="${SPEC_VERSION:-2025-11-25}"

node="$here/.node/bin/node"
suite_dir="$here/node_modules/@modelcontextprotocol/conformance"

say() { printf 'run-client.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }

conformance() {
    "$node" "$suite_dir/dist/index.js" "$@"
}

# Same pinned Node and suite as the server run; its scenario listing is not needed here.
"$here/run.sh" --install-only >/dev/null

say "building mcpbus-conformance-client"
(cd "$root" && cargo build -j2 -p mcpbus-conformance --bin mcpbus-conformance-client)
binary="${CARGO_TARGET_DIR:-$root/target}/debug/mcpbus-conformance-client"
[[ -x "$binary" ]] || die "no binary at $binary"
# The suite splits --command on spaces.
[[ "$binary" != *" "* ]] || die "the client's path contains a space, which the suite cannot run: $binary"

if [[ $# -gt 0 ]]; then
    scenarios=("$@")
else
    mapfile -t scenarios < <("$binary" --list "$SPEC_VERSION")
fi
[[ ${#scenarios[@]} -gt 0 ]] || die "no scenarios to run"

# Extension scenarios are "not on the spec timeline": with --spec-version the suite skips them
# unless forced (a --requirements run forces them too).
mapfile -t extensions < <("$binary" --extensions)
is_extension() {
    local e
    for e in "${extensions[@]}"; do
        [[ "$e" == "$1" ]] && return 0
    done
    return 1
}

work="$(mktemp -d)"
out="${CONFORMANCE_OUT:-$work/results}"
mkdir -p "$out"
keep_work=1
cleanup() {
    if [[ $keep_work -eq 0 ]]; then
        rm -rf "$work"
    fi
}
trap cleanup EXIT

say "running ${#scenarios[@]} client scenario(s) at $SPEC_VERSION"
passed=()
failed=()
for scenario in "${scenarios[@]}"; do
    log="$work/${scenario//\//_}.log"
    status=0
    force=()
    if is_extension "$scenario"; then
        force=(--force)
    fi
    conformance client --command "$binary" --scenario "$scenario" \
        --spec-version "$SPEC_VERSION" "${force[@]}" -o "$out" >"$log" 2>&1 || status=$?
    counts="$(sed -n 's/^Passed: \(.*\)$/\1/p' "$log" | tail -n 1)"
    if [[ $status -eq 0 ]] && grep -q 'OVERALL: PASSED' "$log"; then
        passed+=("$scenario")
        printf '  ok    %-40s %s\n' "$scenario" "${counts:-?}"
    else
        failed+=("$scenario")
        printf '  FAIL  %-40s %s (suite exit code %s)\n' "$scenario" "${counts:-no result}" "$status"
        # The suite's report of the failed checks and the client's own stdout/stderr.
        sed -e 's/^/        /' "$log"
    fi
done

echo
say "summary ($SPEC_VERSION): ${#passed[@]} passed, ${#failed[@]} failed of ${#scenarios[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
    say "failed: ${failed[*]}"
    say "results: $out   logs: $work"
    exit 1
fi
if [[ -n "${CONFORMANCE_OUT:-}" ]]; then
    say "results: $out"
fi
keep_work=0
say "passed"
