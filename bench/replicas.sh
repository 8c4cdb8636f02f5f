#!/usr/bin/env bash
# Cross-replica publish -> deliver latency: subscribers on replica A, events published through
# replica B, both sharing one redis-server (started here on a free loopback port, no
# persistence), side by side with one in-memory mcpbus (subscribers and publisher on the same
# process), with the same sessions, events, rate and payload.
#
#   bench/replicas.sh           1 and 100 subscribers, 300 events at 50/s each (about 1 min)
#   bench/replicas.sh --smoke   5 subscribers, 20 events (a few seconds; fails on any loss)
#
# Uses the fan-out scenario of mcpbus-bench (`fanout --url A --publish-url B/publish`); its
# per-delivery latency is publish request sent -> event read by the subscriber. Installs the
# Debian redis-server with apt-get when it is missing. Prints the report as Markdown tables.
set -euo pipefail

mode=full
case "${1:-}" in
  "") ;;
  --smoke) mode=smoke ;;
  -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
  *) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if ! command -v redis-server >/dev/null 2>&1; then
  echo "== installing redis-server (apt-get)" >&2
  sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q redis-server >&2 ||
    { "${sudo[@]}" apt-get update -q >&2 &&
      DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q redis-server >&2; }
fi

echo "== building (release)" >&2
cargo build --release -j2 -p mcpbus-cli -p mcpbus-bench >&2
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
server_bin="$target_dir/release/mcpbus"
bench_bin="$target_dir/release/mcpbus-bench"

out=$(mktemp -d)
results="$out/results.jsonl"
: >"$results"
token="bench-$RANDOM$RANDOM"
pids=()
failed=0
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$failed" = 0 ]; then rm -rf "$out"; else echo "kept logs in $out" >&2; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

redis_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$out" --save '' --appendonly no \
  >"$out/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
  sleep 0.1
done 2>/dev/null || true

cat >"$out/bench.toml" <<EOF
[server]
name = "mcpbus-bench-server"

[events]
queue_capacity = 1024

[[events.topics]]
pattern = "build/status"
kind = "content"
description = "The topic the fan-out scenario publishes on (not retained)"

[publish]
token = "$token"

[http]
response_mode = "json"
session_idle_timeout_secs = 600
EOF

# start NAME ARGS...: starts `mcpbus serve` with ARGS; sets the variable NAME to its base URL.
start() {
  local name=$1
  shift
  local log="$out/$name.log"
  MCPBUS_LOG=warn "$server_bin" serve --listen 127.0.0.1:0 --config "$out/bench.toml" "$@" \
    2>"$log" &
  pids+=($!)
  local url=
  for _ in $(seq 100); do
    url=$(sed -n 's/^mcpbus: listening on \(http:[^ ]*\)$/\1/p' "$log")
    [ -n "$url" ] && break
    sleep 0.1
  done
  if [ -z "$url" ]; then
    failed=1
    echo "mcpbus ($name) did not start:" >&2
    cat "$log" >&2
    exit 1
  fi
  printf -v "$name" '%s' "${url%/mcp}"
  eval "${name}_pid=$!"
}

redis_url="redis://127.0.0.1:$redis_port"
start memory
start replica_a --redis "$redis_url" --redis-prefix bench
start replica_b --redis "$redis_url" --redis-prefix bench

# pair SUBSCRIBERS EVENTS RATE: the same fan-out in memory, then across replicas.
pair() {
  local n=$1 events=$2 rate=$3 strict=()
  [ "$mode" = smoke ] && strict=(--strict)
  # shellcheck disable=SC2154 # set by start
  timeout --kill-after=5 120 "$bench_bin" fanout --url "$memory/mcp" \
    --publish-url "$memory/publish" --token "$token" --sessions "$n" --events "$events" \
    --rate "$rate" --drain-timeout 10s --label memory --server-pid "$memory_pid" --json \
    "${strict[@]}" >>"$results" || { echo "FAILED: fanout (memory) $n" >&2; failed=1; }
  # shellcheck disable=SC2154 # set by start
  timeout --kill-after=5 120 "$bench_bin" fanout --url "$replica_a/mcp" \
    --publish-url "$replica_b/publish" --token "$token" --sessions "$n" --events "$events" \
    --rate "$rate" --drain-timeout 10s --label replicas --server-pid "$replica_a_pid" --json \
    "${strict[@]}" >>"$results" || { echo "FAILED: fanout (replicas) $n" >&2; failed=1; }
}

echo "== redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') on port $redis_port; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
if [ "$mode" = smoke ]; then
  pair 5 20 50/s
else
  pair 1 300 50/s
  pair 100 300 50/s
fi
"$bench_bin" report --ratio replicas/memory "$results"
exit "$failed"
