#!/usr/bin/env bash
# The long fault-injection run (crates/mcpbus-cli/tests/fault_schedule.rs, docs/reliability.md):
# SEEDS consecutive seeds (default 20) of STEPS steps each (default 30), three replicas reaching
# a redis-server through the fault proxy. Stops at the first failing seed, whose replay command
# it prints; each seed's counts line goes to stderr.
#
#   bash scripts/faults.sh             # 20 seeds x 30 steps, a random first seed
#   bash scripts/faults.sh 20 30 1234  # the same from seed 1234 (replays a reported run)
#
# CI runs the short schedule (1 seed x 8 steps) as part of `cargo test --workspace`.
# Runnable from any directory; needs redis-server (scripts/test.sh installs it).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SEEDS="${1:-20}"
STEPS="${2:-30}"
FIRST="${3:-}"

for n in "$SEEDS" "$STEPS" ${FIRST:+"$FIRST"}; do
    if ! [[ "$n" =~ ^[0-9]+$ ]]; then
        echo "usage: bash scripts/faults.sh [SEEDS] [STEPS] [FIRST_SEED] (whole numbers, got '$n')" >&2
        exit 2
    fi
done

cd "$ROOT"
export MCPBUS_FAULT_SEEDS="$SEEDS" MCPBUS_FAULT_STEPS="$STEPS"
if [ -n "$FIRST" ]; then
    export MCPBUS_FAULT_SEED="$FIRST"
fi
exec cargo test -j2 -p mcpbus-cli --test fault_schedule -- --nocapture
