#!/usr/bin/env bash
# The Redis event store of mcpbus (crate mcpbus-redis) against the Redis event store of the
# Python package mcp-persist, side by side against one Redis server (see docs/BENCHMARKS.md).
#
#   bench/redis.sh          full run (about 30 s after the build): 5,000 appends of a 200-byte
#                           JSON-RPC message to one stream, 200 replays of the newest 100 events
#                           after an event id, 5,000 appends by 8 concurrent writers; 3 rounds,
#                           each side once per round, and the medians compared
#   bench/redis.sh --smoke  tiny run (a few seconds after the build), one round; exits non-zero
#                           on any error or on any read that is not what was appended (for CI)
#
# Installs what is missing: redis-server (Debian package, apt-get) and, in .tools/bench-py
# (git-ignored), a venv with mcp-persist and its dependencies pinned in
# bench/persist/requirements.txt (reinstalled when that file changes). Builds mcpbus-bench in
# release, starts `redis-server --save '' --appendonly no` on a free loopback port in a temporary
# directory, runs `mcpbus-bench redis-store` then bench/persist/bench_persist.py against it (the
# Redis emptied before each), each bounded in time, stops Redis and prints every run and a table
# of the median of each figure side by side with mcpbus / mcp-persist. With 2 or more cores,
# Redis is pinned to core 0 and the benchmark clients to core 1. Results (JSON lines) and the
# Redis log are kept in $BENCH_OUT (default: a temporary directory, removed unless the run fails).
set -euo pipefail

mode=full
case "${1:-}" in
  "") ;;
  --smoke) mode=smoke ;;
  -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
  *) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

log() { printf '== %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  else
    sudo "$@"
  fi
}

# apt_install PACKAGE: installs a Debian package (updating the lists when the first try fails).
apt_install() {
  log "installing $1 (apt-get)"
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >&2; then
    as_root apt-get update -q >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >&2
  fi
}

# ---- What the run needs ----------------------------------------------------------------------

PATH=$PATH:/usr/sbin:/sbin
command -v redis-server >/dev/null || apt_install redis-server
command -v redis-server >/dev/null || { echo "FAILED: no redis-server" >&2; exit 1; }

venv="$root/.tools/bench-py"
requirements="$root/bench/persist/requirements.txt"
stamp="$venv/.mcpbus-requirements.sha256"
python=${PYTHON:-python3}

# setup_python: the venv with mcp-persist, unless it is there for this requirements.txt.
setup_python() {
  local want have=""
  want=$(sha256sum "$requirements" | cut -d' ' -f1)
  [ -f "$stamp" ] && have=$(cat "$stamp")
  if [ "$want" = "$have" ] && "$venv/bin/python" -c 'import mcp_persist, redis' >/dev/null 2>&1; then
    return 0
  fi
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    log "creating the Python venv $venv"
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    if ! "$python" -m venv "$venv" >/dev/null 2>&1; then
      rm -rf "$venv"
      apt_install python3-venv
      "$python" -m venv "$venv"
    fi
  fi
  log "installing mcp-persist (pinned, bench/persist/requirements.txt) into $venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --require-virtualenv \
    -r "$requirements" >&2
  "$venv/bin/python" -c 'import mcp_persist, redis'
  printf '%s\n' "$want" >"$stamp"
}
setup_python

log "building mcpbus-bench (release)"
cargo build --release -j2 -p mcpbus-bench >&2
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bench_bin="$target_dir/release/mcpbus-bench"

# ---- Redis -------------------------------------------------------------------------------------

out=${BENCH_OUT:-$(mktemp -d)}
mkdir -p "$out"
keep_out=${BENCH_OUT:+yes}
results="$out/redis-results.jsonl"
: >"$results"

pin_redis=()
pin_client=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  pin_redis=(taskset -c 0)
  pin_client=(taskset -c 1)
  pinning="Redis pinned to core 0, the benchmark clients to core 1 (taskset)"
else
  pinning="no CPU pinning (taskset missing or fewer than 2 cores)"
fi

redis_pid=
port=
failed=0
cleanup() {
  if [ -n "$redis_pid" ] && kill -0 "$redis_pid" 2>/dev/null; then
    kill -TERM "$redis_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$redis_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  if [ -z "$keep_out" ]; then
    if [ "$failed" = 0 ]; then rm -rf "$out"; else echo "kept results and the Redis log in $out" >&2; fi
  fi
}
trap cleanup EXIT

# redis_cmd WORD...: one command to the Redis on $port (inline protocol), its first reply line.
redis_cmd() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
    printf '%s\r\n' "$*" >&3
    IFS= read -r -t 2 line <&3 || exit 1
    printf '%s\n' "${line%$'\r'}"
  ) 2>/dev/null
}

# redis_start: redis-server on a free loopback port, no persistence; sets redis_pid and port.
redis_start() {
  local try
  for try in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    # Taken if something answers on it.
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
    mkdir -p "$out/redis"
    "${pin_redis[@]}" redis-server --port "$port" --bind 127.0.0.1 --protected-mode yes \
      --save '' --appendonly no --dir "$out/redis" --daemonize no \
      --logfile "$out/redis.log" &
    redis_pid=$!
    for _ in $(seq 50); do
      kill -0 "$redis_pid" 2>/dev/null || break
      [ "$(redis_cmd PING)" = "+PONG" ] && return 0
      sleep 0.1
    done
    kill -KILL "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
    redis_pid=
    echo "redis-server did not start on port $port (try $try)" >&2
  done
  cat "$out/redis.log" >&2 2>/dev/null || true
  return 1
}

if ! redis_start; then
  failed=1
  echo "FAILED: cannot start redis-server" >&2
  exit 1
fi
redis_url="redis://127.0.0.1:$port"

if [ "$mode" = smoke ]; then
  args=(--appends 300 --writers 4 --replay-events 100 --replays 20 --warmup-replays 2)
  limit=20
  rounds=1
else
  args=(--appends 5000 --writers 8 --replay-events 100 --replays 200 --warmup-replays 20)
  limit=30
  rounds=3
fi

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "mode $mode; $pinning; load average $load_before"
log "$(redis-server --version | cut -d' ' -f1-3) at $redis_url (pid $redis_pid); machine: $(nproc) cores, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p')"

# side NAME COMMAND...: empties Redis, runs one side bounded in time; its JSON line goes to the
# results.
side() {
  local name=$1
  shift
  if [ "$(redis_cmd FLUSHALL)" != "+OK" ]; then
    echo "FAILED: FLUSHALL before $name" >&2
    failed=1
    return
  fi
  log "$name"
  if ! timeout --kill-after=5 "$limit" "${pin_client[@]}" "$@" --redis-url "$redis_url" \
      "${args[@]}" --strict >>"$results"; then
    echo "FAILED: $name (errors above, or over the ${limit} s limit)" >&2
    failed=1
  fi
}

for round in $(seq "$rounds"); do
  side "round $round/$rounds: mcpbus (mcpbus-bench redis-store)" "$bench_bin" redis-store --json
  side "round $round/$rounds: mcp-persist (bench/persist/bench_persist.py)" "$venv/bin/python" \
    "$root/bench/persist/bench_persist.py"
done

if ! kill -0 "$redis_pid" 2>/dev/null; then
  echo "FAILED: redis-server exited during the run" >&2
  failed=1
fi

echo
echo "Redis event stores ($mode): mcpbus-redis vs mcp-persist, $pinning"
echo "load average (1, 5, 15 min) before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
"$bench_bin" report --ratio mcpbus/mcp-persist "$results"
if [ "$(grep -c '"scenario":' "$results")" != $((2 * rounds)) ]; then
  echo "FAILED: expected one result line from each side per round" >&2
  failed=1
fi
if [ "$failed" != 0 ]; then
  echo "some part of the run failed (see above)" >&2
  exit 1
fi
