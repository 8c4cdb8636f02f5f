#!/usr/bin/env bash
# Benchmarks `mcpbus serve` over Streamable HTTP with the mcpbus-bench load generator.
#
#   bench/run.sh            full run (about 1 minute after the build): rps with 1, 10 and 50
#                           clients, fan-out to 1,000 sessions
#   bench/run.sh --smoke    tiny run (about 10 s after the build); exits non-zero on any error
#                           or undelivered event (for CI)
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
  -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
  *) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

echo "== building (release)" >&2
cargo build --release -j2 -p mcpbus-cli -p mcpbus-bench >&2
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
server_bin="$target_dir/release/mcpbus"
bench_bin="$target_dir/release/mcpbus-bench"

# One connection per subscribed session on each side: raise the open-files limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 2200 ]; then
  echo "warning: open-files limit $(ulimit -n) is too low for 1,000 sessions (raise the hard limit)" >&2
fi

out=${BENCH_OUT:-$(mktemp -d)}
mkdir -p "$out"
keep_out=${BENCH_OUT:+yes}
results="$out/results.jsonl"
: >"$results"
token="bench-$RANDOM$RANDOM$RANDOM"

cat >"$out/bench.toml" <<EOF
[server]
name = "mcpbus-bench-server"

[events]
queue_capacity = 1024

[[events.topics]]
pattern = "build/status"
kind = "content"
description = "The topic the fan-out scenario publishes on (not retained)"

[[events.topics]]
pattern = "bench/+"
kind = "signal"

[publish]
# Offers the trivial whoami tool the rps scenario calls.
enabled = true
token = "$token"

[http]
listen = "127.0.0.1:0"
path = "/mcp"
response_mode = "json"
session_idle_timeout_secs = 600
EOF

pin_server=()
pin_bench=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  pin_server=(taskset -c 0)
  pin_bench=(taskset -c 1)
  pinning="server pinned to core 0, generator to core 1 (taskset)"
else
  pinning="no CPU pinning (taskset missing or fewer than 2 cores)"
fi

server_pid=
failed=0
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  if [ -z "$keep_out" ]; then
    if [ "$failed" = 0 ]; then rm -rf "$out"; else echo "kept results and server log in $out" >&2; fi
  fi
}
trap cleanup EXIT

MCPBUS_LOG=warn "${pin_server[@]}" "$server_bin" serve --listen 127.0.0.1:0 --config "$out/bench.toml" \
  2>"$out/server.log" &
server_pid=$!
url=
for _ in $(seq 100); do
  url=$(sed -n 's/^mcpbus: listening on \(http:[^ ]*\)$/\1/p' "$out/server.log")
  [ -n "$url" ] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$url" ]; then
  failed=1
  echo "the server did not start:" >&2
  cat "$out/server.log" >&2
  exit 1
fi
base=${url%/mcp}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== mode $mode; $pinning; load average $load_before" >&2
echo "== server $url (pid $server_pid); machine: $(nproc) cores, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p')" >&2

# run SECONDS ARGS...: one scenario, bounded in time; its JSON line goes to the results.
run() {
  local limit=$1
  shift
  if ! timeout --kill-after=5 "$limit" "${pin_bench[@]}" "$bench_bin" "$@" \
      --url "$url" --server-pid "$server_pid" --json >>"$results"; then
    echo "FAILED: mcpbus-bench $*" >&2
    failed=1
  fi
}

if [ "$mode" = smoke ]; then
  run 20 rps --clients 2 --duration 2s --warmup 500ms --strict
  run 20 fanout --publish-url "$base/publish" --token "$token" --sessions 20 --events 20 \
    --rate 50/s --drain-timeout 3s --strict
else
  for clients in 1 10 50; do
    run 30 rps --clients "$clients" --duration 10s --warmup 2s
  done
  run 90 fanout --publish-url "$base/publish" --token "$token" --sessions 1000 --events 200 \
    --rate 50/s --drain-timeout 10s
fi

if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "FAILED: the server exited during the run" >&2
  failed=1
fi

echo
echo "mcpbus-bench ($mode), $pinning"
echo "load average (1, 5, 15 min) before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
"$bench_bin" report "$results"
if [ "$failed" != 0 ]; then
  echo "some scenario failed (see above)" >&2
  exit 1
fi
