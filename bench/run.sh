#!/usr/bin/env bash
# Benchmarks `mcpbus serve` over Streamable HTTP with the mcpbus-bench load generator.
#
#   bench/run.sh            full run (about 2 minutes after the build): rps with 1, 10 and 50
#                           clients; fan-out to 100, 1,000 and 10,000 subscribers on mcpbus and
#                           on the Mosquitto MQTT broker, back to back, with their ratios
#   bench/run.sh --smoke    tiny run (about 10 s after the build); exits non-zero on any error
#                           or undelivered event (for CI)
#
# Mosquitto (the Debian package) is installed with apt-get when `mosquitto` is missing.
# Then mcpbus vs rmcp (bench/rmcp.sh, about 5 more minutes; 15 s in --smoke): rps in JSON and
# SSE response modes, fan-out and 10,000 idle sessions against fresh mcpbus and rmcp-peer
# servers (bench/peers/rmcp-server, built here too), with their ratios.
#
# Builds `mcpbus` and `mcpbus-bench` in release once, starts the server on a free loopback port,
# runs each scenario with a time bound, stops the server and prints the results as Markdown
# tables. With 2 or more cores, the server is pinned to core 0 and the generator to core 1.
# Results (JSON lines) and the server log are kept in $BENCH_OUT (default: a temporary
# directory, removed unless the run fails).
set -euo pipefail

mode=full
case "${1:-}" in
  "") ;;
  --smoke) mode=smoke ;;
  -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
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
# mcpbus vs rmcp: its functions, and the rmcp peer built now rather than between scenarios.
# shellcheck source=bench/rmcp.sh
. "$root/bench/rmcp.sh"
rmcp_build

# One connection per subscribed session on each side: raise the open-files limit.
bench_raise_open_files

out=${BENCH_OUT:-$(mktemp -d)}
mkdir -p "$out"
keep_out=${BENCH_OUT:+yes}
results="$out/results.jsonl"
: >"$results"
token="bench-$RANDOM$RANDOM$RANDOM"

bench_write_config "$out/bench.toml"
bench_pin

server_pid=
mosquitto_pid=
failed=0
cleanup() {
  rmcp_stop
  stop_pid "$server_pid"
  stop_pid "$mosquitto_pid"
  if [ -z "$keep_out" ]; then
    if [ "$failed" = 0 ]; then rm -rf "$out"; else echo "kept results and server log in $out" >&2; fi
  fi
}
trap cleanup EXIT

start_mcpbus

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== mode $mode; $pinning; load average $load_before" >&2
echo "== server $url (pid $server_pid); machine: $(nproc) cores, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p')" >&2

if [ "$mode" = smoke ]; then
  run 20 rps --clients 2 --duration 2s --warmup 500ms --strict
else
  for clients in 1 10 50; do
    run 30 rps --clients "$clients" --duration 10s --warmup 2s
  done
fi

# ---- Fan-out: mcpbus and the Mosquitto peer ------------------------------------------------
# The same subscribers, events, rate and payload size on both, back to back. Each size runs
# against a freshly started mcpbus server and a freshly started broker, so that subscribers of
# an earlier size (mcpbus keeps a session until it is deleted or idles out) take no deliveries
# and the RSS before setup is a clean baseline. The broker is pinned like the server (core 0),
# the generator runs on core 1.

# fanout_pair SECONDS SUBSCRIBERS EVENTS RATE DRAIN [--strict]: the fan-out on a fresh mcpbus
# server, then on a fresh broker, with the same parameters.
fanout_pair() {
  local limit=$1 n=$2 events=$3 rate=$4 drain=$5
  shift 5
  stop_mcpbus
  start_mcpbus
  run "$limit" fanout --publish-url "$base/publish" --token "$token" --sessions "$n" \
    --events "$events" --rate "$rate" --drain-timeout "$drain" "$@"
  if ! mosquitto_start; then
    failed=1
    return
  fi
  if ! timeout --kill-after=5 "$limit" "${pin_bench[@]}" "$bench_bin" fanout-mqtt \
      --broker "$broker" --broker-pid "$mosquitto_pid" --subscribers "$n" --events "$events" \
      --rate "$rate" --drain-timeout "$drain" --json "$@" >>"$results"; then
    echo "FAILED: mcpbus-bench fanout-mqtt --subscribers $n" >&2
    failed=1
  fi
  mosquitto_stop
}

if ! mosquitto_install; then
  echo "FAILED: cannot install mosquitto" >&2
  failed=1
elif [ "$mode" = smoke ]; then
  # 20 subscribers, 20 events on each.
  fanout_pair 20 20 20 50/s 3s --strict
else
  fanout_pair 60 100 200 50/s 10s
  fanout_pair 90 1000 200 50/s 10s
  # 10,000 subscribers: fewer events, further apart (the same on both).
  fanout_pair 120 10000 20 2/s 30s
fi
# ---- end of the fan-out section --------------------------------------------------------------

if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "FAILED: the server exited during the run" >&2
  failed=1
fi

echo
echo "mcpbus-bench ($mode), $pinning"
echo "load average (1, 5, 15 min) before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
if [ "$mode" = full ]; then
  # The tables, then the fan-out figures of mcpbus and Mosquitto side by side with their ratios.
  "$bench_bin" report --ratio mcpbus/mosquitto "$results"
else
  "$bench_bin" report "$results"
fi

rmcp_compare
if [ "$failed" != 0 ]; then
  echo "some scenario failed (see above)" >&2
  exit 1
fi
