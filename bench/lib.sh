# shellcheck shell=bash
# What bench/run.sh, bench/ab.sh and bench/events.sh share: sourced (not run on its own), so
# that they start, pin, configure and stop `mcpbus serve` (and Mosquitto) and run the scenarios
# the same way.
#
#   bench_target_dir            prints cargo's target directory of the workspace in $PWD
#   bench_raise_open_files      raises the open-files limit to the hard one (a connection per
#                               session on each side); warns when that is too low for 1,000
#   bench_pin                   sets pin_server, pin_bench (command prefixes) and pinning (a
#                               sentence): server on core 0, generator on core 1 with 2+ cores
#   bench_write_config FILE [LINES]
#                               the server configuration of the scenarios (publish token
#                               $token); LINES (optional) are added to its [events] table
#   stop_pid PID                TERM, then KILL after 5 s
#   start_mcpbus                starts $server_bin on a free loopback port with $out/bench.toml
#                               (pinned); sets server_pid, url and base
#   stop_mcpbus                 stops it; appends its log to $out/server.log
#   run SECONDS ARGS...         one mcpbus-bench scenario against it, bounded in time; its JSON
#                               line goes to $results, a failure sets failed=1
#   mosquitto_install           installs the Debian package when `mosquitto` is missing
#   mosquitto_start             a broker on a free loopback port (pinned like the server); sets
#                               mosquitto_pid and broker
#   mosquitto_stop              stops it
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
${2:-}

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

# mosquitto_install: installs the Debian package when `mosquitto` is missing.
mosquitto_install() {
  PATH=$PATH:/usr/sbin:/sbin
  command -v mosquitto >/dev/null && return 0
  echo "== installing mosquitto (apt-get)" >&2
  local sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  if ! DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q mosquitto >&2; then
    "${sudo[@]}" apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q mosquitto >&2
  fi
  command -v mosquitto >/dev/null
}

# mosquitto_start: starts a broker on a free loopback port with a minimal config (pinned, with
# the raised open-files limit); sets mosquitto_pid and broker.
mosquitto_start() {
  local conf="$out/mosquitto.conf" log="$out/mosquitto.log" port
  for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    # Taken if something answers on it.
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
    printf '%s\n' "listener $port 127.0.0.1" "allow_anonymous true" "max_connections -1" \
      "persistence false" "log_dest stderr" "log_type error" "log_type warning" >"$conf"
    (
      ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
      exec "${pin_server[@]}" mosquitto -c "$conf"
    ) 2>>"$log" &
    mosquitto_pid=$!
    for _ in $(seq 50); do
      kill -0 "$mosquitto_pid" 2>/dev/null || break
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        broker=127.0.0.1:$port
        return 0
      fi
      sleep 0.1
    done
    stop_pid "$mosquitto_pid"
    mosquitto_pid=
  done
  echo "mosquitto did not start:" >&2
  cat "$log" >&2
  return 1
}

# mosquitto_stop: stops the broker started last.
mosquitto_stop() {
  stop_pid "$mosquitto_pid"
  mosquitto_pid=
}
