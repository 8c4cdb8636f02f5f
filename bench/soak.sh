#!/usr/bin/env bash
# A soak run: two `mcpbus serve --redis` replicas sharing one redis-server, under steady
# publishes, long-lived subscribers of both eras and churn, sampled every 10 s; fails when,
# after the warm-up, a replica's RSS or open fds, Redis's memory or key count, or the
# publish -> deliver p99 grows beyond its bound, or when any long-lived subscriber misses an
# event (the scenario is `mcpbus-bench soak`, bench/src/soak/; docs/BENCHMARKS.md, "Soak").
#
#   bench/soak.sh                the full run: 60 minutes (the first 9 a warm-up, not judged)
#   bench/soak.sh --minutes N    N minutes (e.g. 5 or 2.5; the warm-up is 15 %, at least 45 s)
#   bench/soak.sh --smoke        2.5 minutes, as in .ci/run
#   bench/soak.sh --minutes 5 -- --churn-every 50ms
#                                arguments after -- go to `mcpbus-bench soak` (its load and
#                                bounds: `mcpbus-bench soak --help`)
#
# Builds `mcpbus` and `mcpbus-bench` in release, starts redis-server (installed with apt-get
# when missing) on a free loopback port without persistence, and the two replicas on loopback,
# all three pinned to core 0 with the load generator on core 1 when there are 2 cores. The load
# is light (200 events/s, 10 long-lived subscribers, one churned subscriber per second per
# replica) so that the run can share a 2-core machine. The samples (CSV), a Markdown summary
# and the servers' logs go to $SOAK_OUT (default: target/soak/<date>-<time>), kept after the
# run; the summary's last line is the verdict. Every process started here is stopped on exit,
# Ctrl-C included.
set -euo pipefail

usage() { echo "usage: $0 [--minutes N | --smoke] [-- MCPBUS-BENCH-SOAK-ARGS...]" >&2; }

minutes=60
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --) shift; extra=("$@"); break ;;
    --minutes) [ $# -ge 2 ] || { usage; exit 2; }; minutes=$2; shift 2 ;;
    --minutes=*) minutes=${1#*=}; shift ;;
    --smoke) minutes=2.5; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) usage; exit 2 ;;
  esac
done
if ! [[ "$minutes" =~ ^[0-9]+(\.[0-9]+)?$ ]] || [ "$(awk "BEGIN { print ($minutes >= 1) }")" != 1 ]; then
  echo "--minutes: a number of minutes, at least 1 (got '$minutes')" >&2
  exit 2
fi
seconds=$(awk "BEGIN { printf \"%d\", $minutes * 60 }")

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"

if ! command -v redis-server >/dev/null 2>&1; then
  echo "== installing redis-server (apt-get)" >&2
  sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q redis-server >&2 ||
    { "${sudo[@]}" apt-get update -q >&2 &&
      DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q redis-server >&2; }
fi

echo "== building (release)" >&2
cargo build --release -j2 -p mcpbus-cli -p mcpbus-bench >&2
target_dir=$(bench_target_dir)
server_bin="$target_dir/release/mcpbus"
bench_bin="$target_dir/release/mcpbus-bench"

out=${SOAK_OUT:-$target_dir/soak/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
# The replicas read the /publish token from the environment, the generator too.
MCPBUS_PUBLISH_TOKEN="soak-$RANDOM$RANDOM$RANDOM$RANDOM"
# Replicas of one deployment share the key that seals requestState (as docs/deployment.md asks).
MCPBUS_STATE_KEY="soak-state-key-$RANDOM$RANDOM$RANDOM$RANDOM"
export MCPBUS_PUBLISH_TOKEN MCPBUS_STATE_KEY
bench_pin

pids=()
bench_pid=
# The generator first, then the replicas, Redis last (so the replicas do not log its loss).
cleanup() {
  stop_pid "$bench_pid"
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_pid "${pids[i]}"; done
}
trap cleanup EXIT
# Ctrl-C or TERM: leave through the EXIT trap, which stops everything started here.
trap 'echo "soak: interrupted" >&2; exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Redis: no persistence (a soak measures memory, not disks). mcpbus bounds what it keeps (the
# configuration below); maxmemory with noeviction is only a safety net for the shared machine:
# a leak would then fail the run with errors instead of eating the machine's memory.
redis_port=$(free_port)
"${pin_server[@]}" redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$out" --save '' \
  --appendonly no --maxmemory 512mb --maxmemory-policy noeviction >"$out/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
  sleep 0.1
done

# The soak's bounds on what mcpbus keeps, chosen so that everything reaches its steady size
# within the warm-up (45 s at least): the shared log keeps about 5,000 entries (25 s at
# 200 events/s; pollers are at most a second behind); a session idle for 10 s (an abandoned
# one) is reaped, and its stored stream in Redis expires 20 s after its last append; each
# stored stream keeps its last 256 events (a GET stream reader is never that far behind here).
cat >"$out/soak.toml" <<'EOF'
[server]
name = "mcpbus-soak"

[events]
queue_capacity = 1024

[[events.topics]]
pattern = "soak/+"
kind = "content"
description = "The soak's topics: soak/t0, soak/t1, ... (not retained)"

[http]
response_mode = "json"
session_idle_timeout_secs = 10
replay_events_per_stream = 256

[redis]
log_max_len = 5000
EOF

# start NAME: starts a replica; sets NAME (its base URL) and NAME_pid.
start() {
  local name=$1 log="$out/$1.log" url=
  # Created here, before the replica's own redirection, so that the first read cannot miss it.
  : >"$log"
  MCPBUS_LOG=warn "${pin_server[@]}" "$server_bin" serve --listen 127.0.0.1:0 \
    --config "$out/soak.toml" --redis "redis://127.0.0.1:$redis_port" --redis-prefix soak \
    2>"$log" &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do
    url=$(sed -n 's/^mcpbus: listening on \(http:[^ ]*\)$/\1/p' "$log" || true)
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$url" ]; then
    echo "replica $name did not start:" >&2
    cat "$log" >&2
    exit 1
  fi
  printf -v "$name" '%s' "${url%/mcp}"
  printf -v "${name}_pid" '%s' "$pid"
}
start replica_a
start replica_b

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
conditions="$(nproc) cores ($(lscpu 2>/dev/null | sed -n 's/^Model name: *//p')), \
$(redis-server --version | sed -n 's/.*\(v=[^ ]*\).*/redis-server \1/p'), mcpbus at \
$(git rev-parse --short HEAD 2>/dev/null || echo '?'), $pinning; load average before: $load_before"
echo "== soak: $minutes min ($seconds s); $conditions" >&2
echo "== results in $out" >&2

# In the background and waited for, so that Ctrl-C reaches the trap at once (bash runs a trap
# only once the foreground command ends); `timeout` bounds a run that would hang.
# shellcheck disable=SC2154 # replica_a, replica_b and their pids are set by start
timeout --kill-after=10 $((seconds + 240)) "${pin_bench[@]}" "$bench_bin" soak \
  --replica "$replica_a/mcp" --replica-pid "$replica_a_pid" \
  --replica "$replica_b/mcp" --replica-pid "$replica_b_pid" \
  --redis-url "redis://127.0.0.1:$redis_port" --duration "${seconds}s" \
  --csv "$out/samples.csv" --summary "$out/summary.md" --conditions "$conditions" \
  "${extra[@]}" &
bench_pid=$!
status=0
wait "$bench_pid" || status=$?
bench_pid=

for pid in "$replica_a_pid" "$replica_b_pid"; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "soak: FAIL: a replica (pid $pid) exited during the run" >&2
    status=1
  fi
done
echo "load average before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "samples: $out/samples.csv; summary: $out/summary.md; logs: $out/*.log"
exit "$status"
