# shellcheck shell=bash
# What bench/run.sh and bench/ab.sh share: sourced (not run on its own), so that both start,
# pin, configure and stop `mcpbus serve` and run the scenarios the same way.
#
#   bench_target_dir            prints cargo's target directory of the workspace in $PWD
#   bench_raise_open_files      raises the open-files limit to the hard one (a connection per
#                               session on each side); warns when that is too low for 1,000
#   bench_pin                   sets pin_server, pin_bench (command prefixes) and pinning (a
#                               sentence): server on core 0, generator on core 1 with 2+ cores
#   bench_write_config FILE     the server configuration of the scenarios (publish token $token)
#   stop_pid PID                TERM, then KILL after 5 s
#   start_mcpbus                starts $server_bin on a free loopback port with $out/bench.toml
#                               (pinned); sets server_pid, url and base
#   stop_mcpbus                 stops it; appends its log to $out/server.log
#   run SECONDS ARGS...         one mcpbus-bench scenario against it, bounded in time; its JSON
#                               line goes to $results, a failure sets failed=1
#
# The caller sets server_bin, bench_bin, out, results, token and failed (and calls bench_pin).

bench_target_dir() {
  cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p'
}

bench_raise_open_files() {
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 2200 ]; then
    echo "warning: open-files limit $(ulimit -n) is too low for 1,000 sessions (raise the hard limit)" >&2
  fi
}

bench_pin() {
  pin_server=()
  pin_bench=()
  if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    pin_server=(taskset -c 0)
    pin_bench=(taskset -c 1)
    pinning="server pinned to core 0, generator to core 1 (taskset)"
  else
    pinning="no CPU pinning (taskset missing or fewer than 2 cores)"
  fi
}

bench_write_config() {
  cat >"$1" <<EOF
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
}

stop_pid() {
  local pid=$1
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
}

start_mcpbus() {
  local log="$out/server.start.log"
  MCPBUS_LOG=warn "${pin_server[@]}" "$server_bin" serve --listen 127.0.0.1:0 \
    --config "$out/bench.toml" 2>"$log" &
  server_pid=$!
  url=
  for _ in $(seq 100); do
    url=$(sed -n 's/^mcpbus: listening on \(http:[^ ]*\)$/\1/p' "$log")
    [ -n "$url" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$url" ]; then
    failed=1
    echo "the server did not start:" >&2
    cat "$log" >&2
    exit 1
  fi
  base=${url%/mcp}
}

stop_mcpbus() {
  stop_pid "$server_pid"
  server_pid=
  cat "$out/server.start.log" >>"$out/server.log" 2>/dev/null || true
}

run() {
  local limit=$1
  shift
  if ! timeout --kill-after=5 "$limit" "${pin_bench[@]}" "$bench_bin" "$@" \
      --url "$url" --server-pid "$server_pid" --json >>"$results"; then
    echo "FAILED: mcpbus-bench $*" >&2
    failed=1
  fi
}
