#!/usr/bin/env bash
# Slow and hostile clients against `mcpbus serve` (docs/BENCHMARKS.md, "Slow and hostile
# clients"), in one run:
#
#   stalled   1,000 fast subscribers alone (label mcpbus), then the same beside 10 stalled ones
#             (mcpbus-stalled: subscribed like them, reading nothing once their stream started,
#             4 KiB receive buffers), each on a fresh server, alternating for 3 rounds; GET
#             streams of sessions, then push streams (mcpbus-push, mcpbus-push-stalled); 200
#             events at 50/s with 512 bytes of padding each. The fast subscribers' figures with
#             and without, as medians over the rounds with their ratio (`report --change`).
#   storm     64 clients connect and disconnect as fast as they can for 10 s (bare connects,
#             sessions initialized and abandoned or deleted, requests cut off mid-body, push
#             streams dropped) against a server whose sessions idle out after 3 s: connects/s,
#             the server's RSS before (after a 1 s warm-up storm) and once /healthz shows no
#             session nor connection left, and what it showed.
#
#   bench/hostile.sh           the full run (2 to 3 minutes after the build, more when an
#                              earlier run left sockets in TIME_WAIT)
#   bench/hostile.sh --smoke   tiny versions (about 15 s after the build); exits non-zero on
#                              any error, undelivered event or leftover session (for CI)
#
# Every scenario gets a fresh server, pinned to core 0 with the generator on core 1 when there
# are 2 cores (bench/lib.sh). Results (JSON lines) and the server log are kept in $BENCH_OUT
# (default: a temporary directory, removed unless the run fails).
set -euo pipefail

mode=full
case "${1:-}" in
  "") ;;
  --smoke) mode=smoke ;;
  -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
  *) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"

echo "== building (release)" >&2
cargo build --release -j2 -p mcpbus-cli -p mcpbus-bench >&2
target_dir=$(bench_target_dir)
server_bin="$target_dir/release/mcpbus"
bench_bin="$target_dir/release/mcpbus-bench"

# A connection per subscriber, and thousands during the storm.
bench_raise_open_files

out=${BENCH_OUT:-$(mktemp -d)}
mkdir -p "$out"
keep_out=${BENCH_OUT:+yes}
results="$out/results.jsonl"
: >"$results"
token="bench-$RANDOM$RANDOM$RANDOM"
bench_pin

server_pid=
failed=0
cleanup() {
  stop_pid "$server_pid"
  if [ -z "$keep_out" ]; then
    if [ "$failed" = 0 ]; then rm -rf "$out"; else echo "kept results and server log in $out" >&2; fi
  fi
}
trap cleanup EXIT

# fresh_publishing SECONDS ARGS...: one publishing scenario on a freshly started server.
fresh_publishing() {
  stop_mcpbus
  start_mcpbus
  run "$@" --publish-url "$base/publish" --token "$token"
}

# stalled_pair SECONDS SCENARIO LABEL ARGS...: the fan-out alone, then beside the stalled ones.
stalled_pair() {
  local limit=$1 scenario=$2 label=$3 stalled=$4
  shift 4
  fresh_publishing "$limit" "$scenario" --label "$label" "$@"
  fresh_publishing "$limit" "$scenario" --label "$label-stalled" --stalled "$stalled" "$@"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== mode $mode; $pinning; load average $load_before" >&2
echo "== machine: $(nproc) cores, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p')" >&2

# Room for the push streams of both sides (1,000 fast and 10 stalled) and of the storm.
bench_write_config "$out/bench.toml" "max_streams = 4096"
if [ "$mode" = smoke ]; then
  args=(--sessions 20 --events 20 --rate 50/s --payload-bytes 4096 --drain-timeout 5s --strict)
  stalled_pair 30 fanout mcpbus 2 "${args[@]}"
  stalled_pair 30 push-fanout mcpbus-push 2 "${args[@]}"
else
  args=(--sessions 1000 --events 200 --rate 50/s --payload-bytes 512 --drain-timeout 10s)
  for round in 1 2 3; do
    echo "== round $round" >&2
    stalled_pair 90 fanout mcpbus 10 "${args[@]}"
    stalled_pair 90 push-fanout mcpbus-push 10 "${args[@]}"
  done
fi

# settle_ports: waits (at most 60 s) until fewer than 5,000 loopback TCP sockets are in
# TIME_WAIT (as bench/events.sh does): a storm leaves one per connection for 60 s, and a second
# run started right after the first one once met "connection refused". Not in --smoke.
settle_ports() {
  [ "$mode" = full ] && command -v ss >/dev/null || return 0
  local waiting
  for _ in $(seq 60); do
    waiting=$(ss -tan state time-wait 2>/dev/null | wc -l)
    [ "$waiting" -lt 5000 ] && return 0
    sleep 1
  done
  echo "warning: still $waiting sockets in TIME_WAIT" >&2
}

# The storm: sessions idle out after 3 s (1 s in --smoke), so that the abandoned ones are
# reaped within the run.
stop_mcpbus
settle_ports
idle=3
[ "$mode" = smoke ] && idle=1
sed -i "s/^session_idle_timeout_secs = .*/session_idle_timeout_secs = $idle/" "$out/bench.toml"
start_mcpbus
if [ "$mode" = smoke ]; then
  run 60 storm --label mcpbus-storm --duration 2s --warmup 0s --concurrency 8 --settle 1s \
    --settle-timeout 30s --strict
else
  run 120 storm --label mcpbus-storm --duration 10s --warmup 1s --concurrency 64
fi
stop_mcpbus

if [ -n "$server_pid" ] && ! kill -0 "$server_pid" 2>/dev/null; then
  echo "FAILED: the server exited during the run" >&2
  failed=1
fi

echo
echo "mcpbus-bench hostile ($mode), $pinning"
echo "load average (1, 5, 15 min) before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
"$bench_bin" report --change mcpbus..mcpbus-stalled "$results"
echo
echo "push streams:"
grep -E '"label":"mcpbus-push(-stalled)?"' "$results" |
  "$bench_bin" report --change mcpbus-push..mcpbus-push-stalled
echo
echo "storm:"
grep '"scenario":"storm"' "$results" || true
if [ "$failed" != 0 ]; then
  echo "some scenario failed (see above)" >&2
  exit 1
fi
