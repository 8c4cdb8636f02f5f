#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ (cargo fuzz, libFuzzer) for SECONDS each, default 30, and
# fails if any of them finds a crash (a panic, i.e. a broken property, an abort, a leak over
# libFuzzer's memory limit, or an input running longer than 60 s):
#
#   bash scripts/fuzz.sh          # 30 s per target (a smoke run, about 5 minutes plus the build)
#   bash scripts/fuzz.sh 3600     # the long local run: one hour per target
#
# Installs what it needs when missing: the nightly toolchain (rustup, minimal profile) and
# cargo-fuzz (`cargo install cargo-fuzz --locked`). The fuzz crate is outside the workspace
# and builds into fuzz/target (the first build takes a few minutes). New corpus entries go to
# fuzz/corpus-work/<target> (gitignored); the committed seeds in fuzz/corpus/<target> are only
# read. A crash leaves its input in fuzz/artifacts/<target>/; the summary prints the command
# that replays it. Sanitizer: none by default (the code under test is safe Rust, and without
# ASan a run covers about twice the inputs); FUZZ_SANITIZER=address turns ASan on.
# Runnable from any directory.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECS="${1:-30}"
SANITIZER="${FUZZ_SANITIZER:-none}"

log() { printf 'scripts/fuzz.sh: %s\n' "$*" >&2; }

if ! [[ "$SECS" =~ ^[1-9][0-9]*$ ]]; then
    log "usage: bash scripts/fuzz.sh [SECONDS_PER_TARGET] (a positive integer, got '$SECS')"
    exit 2
fi

if ! rustup toolchain list | grep -q '^nightly'; then
    log "installing the nightly toolchain (cargo fuzz needs it)"
    rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# The fuzz crate has its own workspace and target directory; a CARGO_TARGET_DIR pointing at
# the main workspace's would mix nightly sanitizer builds into it.
unset CARGO_TARGET_DIR
export CARGO_INCREMENTAL=0
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
cd "$ROOT"

FLAGS=(--sanitizer "$SANITIZER" --debug-assertions)
log "building the fuzz targets (sanitizer: $SANITIZER)"
cargo +nightly fuzz build "${FLAGS[@]}"

LOGS="$ROOT/fuzz/target/fuzz-logs"
mkdir -p "$LOGS"
failed=()
summary=()
for target in $(cargo +nightly fuzz list); do
    work="$ROOT/fuzz/corpus-work/$target"
    mkdir -p "$work" "$ROOT/fuzz/corpus/$target"
    log "running $target for ${SECS}s"
    if cargo +nightly fuzz run "${FLAGS[@]}" "$target" "$work" "$ROOT/fuzz/corpus/$target" -- \
        -max_total_time="$SECS" -timeout=60 -print_final_stats=1 >"$LOGS/$target.log" 2>&1; then
        status=ok
    else
        status=FAILED
        failed+=("$target")
    fi
    execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$LOGS/$target.log" | grep -o '[0-9]*$' || true)"
    cov="$(grep -o 'cov: [0-9]*' "$LOGS/$target.log" | tail -1 || true)"
    summary+=("$(printf '%-18s %-6s %10s execs  %s' "$target" "$status" "${execs:-?}" "$cov")")
done

log "summary (logs in fuzz/target/fuzz-logs/):"
printf '  %s\n' "${summary[@]}" >&2
if [ "${#failed[@]}" -gt 0 ]; then
    for target in "${failed[@]}"; do
        log "$target failed (full log: fuzz/target/fuzz-logs/$target.log):"
        grep -E -m1 -A8 'panicked at|ERROR: libFuzzer' "$LOGS/$target.log" >&2 || tail -n 20 "$LOGS/$target.log" >&2
        artifact="$(grep -E -o "fuzz/artifacts/$target/[a-z]+-[0-9a-f]+" "$LOGS/$target.log" | head -n 1 || true)"
        log "replay with: cargo +nightly fuzz run ${FLAGS[*]} $target ${artifact:-fuzz/artifacts/$target/<file>}"
    done
    exit 1
fi
