#!/usr/bin/env bash
# Benchmarks the SEP-3415 event delivery of `mcpbus serve` (docs/protocol.md 3) beside the
# handshake-era GET-stream fan-out and the Mosquitto MQTT broker, in one run:
#
#   fan-out   1,000 subscribers × 200 events at 50/s and 10,000 subscribers × 20 events at 2/s,
#             each on a fresh process: mcpbus with a session and GET stream per subscriber
#             (label mcpbus), mcpbus with an `events/stream` push stream per subscriber
#             (mcpbus-push), then Mosquitto with an MQTT client per subscriber (mosquitto)
#   memory    RSS per idle subscriber: 1,000 and 10,000 push streams (mcpbus-push) next to as
#             many idle sessions with their GET stream (mcpbus)
#   polls     `events/poll` answers per second: 1, 10 and 50 pollers, one poll in flight each,
#             following their cursors while 50 events/s are published (10 s measured)
#   webhooks  1, 10 and 100 webhook subscriptions (`events/subscribe`) to a receiver inside
#             mcpbus-bench on loopback, 200 events at 50/s: deliveries/s and publish → POST
#             latency (label mcpbus-webhook)
#
#   bench/events.sh           the full run (2 to 6 minutes after the build: before each fan-out
#                             and memory scenario it waits, up to 60 s, for the sockets the
#                             previous ones left in TIME_WAIT to go)
#   bench/events.sh --smoke   tiny versions of each (about 10 s after the build); exits
#                             non-zero on any error or undelivered event (for CI)
#
# Every scenario gets a fresh server (and broker), pinned to core 0 with the generator on core
# 1 when there are 2 cores. The server's configuration is bench/lib.sh's, with room for 20,000
# push streams ([events] max_streams), webhooks allowed to loopback ([webhooks] allow_private)
# and a bearer token for the subscribing principal ([[auth.tokens]]). Results (JSON lines) and
# the server log are kept in $BENCH_OUT (default: a temporary directory, removed unless the run
# fails). Mosquitto (the Debian package) is installed with apt-get when missing.
set -euo pipefail

mode=full
case "${1:-}" in
  "") ;;
  --smoke) mode=smoke ;;
  -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
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

# A connection per subscriber on each side.
bench_raise_open_files

out=${BENCH_OUT:-$(mktemp -d)}
mkdir -p "$out"
keep_out=${BENCH_OUT:+yes}
results="$out/results.jsonl"
: >"$results"
token="bench-$RANDOM$RANDOM$RANDOM"
# The principal that subscribes webhooks; the server reads it from the environment too.
export MCPBUS_BENCH_AUTH_TOKEN="bench-auth-$RANDOM$RANDOM$RANDOM$RANDOM"

bench_write_config "$out/bench.toml" "max_streams = 20000"
cat >>"$out/bench.toml" <<'EOF'

[webhooks]
enabled = true
# The receiver listens on 127.0.0.1, 127.0.0.2, ... (plain HTTP on loopback only).
allow_private = ["127.0.0.0/8"]

[[auth.tokens]]
principal = "bench"
token_env = "MCPBUS_BENCH_AUTH_TOKEN"
EOF
bench_pin

server_pid=
mosquitto_pid=
failed=0
cleanup() {
  stop_pid "$server_pid"
  stop_pid "$mosquitto_pid"
  if [ -z "$keep_out" ]; then
    if [ "$failed" = 0 ]; then rm -rf "$out"; else echo "kept results and server log in $out" >&2; fi
  fi
}
trap cleanup EXIT

# fresh SECONDS ARGS...: one scenario on a freshly started server.
fresh() {
  stop_mcpbus
  start_mcpbus
  run "$@"
}

# fresh_publishing SECONDS ARGS...: the same, for a scenario that publishes (POST /publish).
fresh_publishing() {
  stop_mcpbus
  start_mcpbus
  run "$@" --publish-url "$base/publish" --token "$token"
}

# settle_ports: waits (at most 60 s) until fewer than 5,000 loopback TCP sockets are in
# TIME_WAIT. Each 10,000-subscriber scenario leaves 10,000 of them for 60 s, and a webhook
# delivery (a connection per POST) one each; in one back-to-back run of three rounds a later
# 10,000-session setup once failed with "connection refused" while 22,000 of them were held,
# with 28,000 ephemeral ports in all. Not in --smoke (small scenarios), nor without `ss`.
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

# fanout_three SECONDS SUBSCRIBERS EVENTS RATE DRAIN [--strict]: GET streams, push streams, then
# MQTT subscribers, with the same parameters, each on a fresh server or broker.
fanout_three() {
  local limit=$1 n=$2 events=$3 rate=$4 drain=$5
  shift 5
  local args=(--sessions "$n" --events "$events" --rate "$rate" --drain-timeout "$drain" "$@")
  settle_ports
  fresh_publishing "$limit" fanout "${args[@]}"
  settle_ports
  fresh_publishing "$limit" push-fanout --label mcpbus-push "${args[@]}"
  stop_mcpbus
  settle_ports
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

# memory_pair SECONDS SUBSCRIBERS [ARGS...]: idle sessions with GET streams, then push streams.
memory_pair() {
  local limit=$1 n=$2
  shift 2
  settle_ports
  fresh "$limit" memory --sessions "$n" "$@"
  settle_ports
  fresh "$limit" memory --delivery push-stream --label mcpbus-push --sessions "$n" "$@"
}

start_mcpbus
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== mode $mode; $pinning; load average $load_before" >&2
echo "== machine: $(nproc) cores, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p')" >&2

if ! mosquitto_install; then
  echo "FAILED: cannot install mosquitto" >&2
  failed=1
fi

if [ "$mode" = smoke ]; then
  fanout_three 30 20 20 50/s 3s --strict
  memory_pair 20 50 --settle 500ms --strict
  fresh_publishing 20 polls --pollers 2 --duration 2s --warmup 500ms --strict
  fresh_publishing 30 webhooks --label mcpbus-webhook --sessions 12 --events 20 --rate 50/s \
    --drain-timeout 5s --strict
else
  fanout_three 90 1000 200 50/s 10s
  # 10,000 subscribers: fewer events, further apart (as bench/run.sh does).
  fanout_three 150 10000 20 2/s 30s
  memory_pair 60 1000
  memory_pair 120 10000
  for pollers in 1 10 50; do
    fresh_publishing 30 polls --pollers "$pollers" --duration 10s --warmup 2s
  done
  for subscriptions in 1 10 100; do
    fresh_publishing 90 webhooks --label mcpbus-webhook --sessions "$subscriptions" \
      --events 200 --rate 50/s --drain-timeout 30s
  done
fi

if [ -n "$server_pid" ] && ! kill -0 "$server_pid" 2>/dev/null; then
  echo "FAILED: the server exited during the run" >&2
  failed=1
fi

echo
echo "mcpbus-bench events ($mode), $pinning"
echo "load average (1, 5, 15 min) before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
"$bench_bin" report --ratio mcpbus-push/mcpbus --ratio mcpbus-push/mosquitto \
  --ratio mcpbus/mosquitto "$results"
if [ "$failed" != 0 ]; then
  echo "some scenario failed (see above)" >&2
  exit 1
fi
