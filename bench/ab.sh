#!/usr/bin/env bash
# Compares two git revisions of the `mcpbus` server side by side in one run: tools/call req/s
# and fan-out (deliveries/s, server CPU per delivery, publish -> last delivery), in alternating
# rounds, so that a change can be told from the noise of a shared machine (docs/BENCHMARKS.md).
#
#   bench/ab.sh REV_A REV_B              3 rounds: in each, rps with 1 and then 10 clients (JSON
#                                        answers, 10 s measured after 2 s of warm-up) and fan-out
#                                        to 1,000 sessions (200 events at 50/s), each on A then
#                                        on B, every run against a freshly started server
#   bench/ab.sh REV_A REV_B --smoke      1 round of short runs, fan-out to 100 sessions
#   bench/ab.sh REV_A REV_B --rounds N   N rounds (also with --smoke)
#
# Builds the `mcpbus` binary of each revision in release from a `git archive` of it in a
# temporary directory outside the repository, with a CARGO_TARGET_DIR there (shared by the two
# builds so that the dependencies compile once; each binary is copied out as soon as it is
# built), and `mcpbus-bench` once from the current tree. Servers listen on loopback only and are
# pinned like bench/run.sh's (server on core 0, generator on core 1), each run bounded in time.
# Prints every run, then per figure the median over the rounds of each revision, B / A and the
# range of each. Fails (non-zero) on any error, timeout or undelivered event.
# The temporary directory is removed on exit. AB_TARGET_DIR=DIR builds the revisions in DIR
# instead and keeps it, so that a later run does not compile the dependencies again (not the
# target directory of a checkout: its crates, older than the builds made there, would be taken
# for built). Results (JSON lines) and server logs are kept in $BENCH_OUT (default: a temporary
# directory, removed unless the run fails).
set -euo pipefail

usage() { echo "usage: $0 REV_A REV_B [--smoke] [--rounds N]" >&2; exit 2; }

mode=full
rounds=
revs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) mode=smoke ;;
    --rounds)
      [ $# -ge 2 ] || usage
      rounds=$2
      shift
      ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    -*) echo "unknown option: $1" >&2; usage ;;
    *) revs+=("$1") ;;
  esac
  shift
done
[ "${#revs[@]}" = 2 ] || usage
if [ -z "$rounds" ]; then
  if [ "$mode" = smoke ]; then rounds=1; else rounds=3; fi
fi
case "$rounds" in
  '' | *[!0-9]* | 0*) echo "--rounds expects a positive number, not \"$rounds\"" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"

# The commits to compare, resolved now (a branch may move while the builds run).
declare -A rev sha
rev[A]=${revs[0]}
rev[B]=${revs[1]}
for side in A B; do
  if ! sha[$side]=$(git rev-parse --verify --quiet "${rev[$side]}^{commit}"); then
    echo "$side: \"${rev[$side]}\" is not a commit of this repository" >&2
    exit 2
  fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mcpbus-ab.XXXXXX")
out=${BENCH_OUT:-$(mktemp -d)}
mkdir -p "$out"
keep_out=${BENCH_OUT:+yes}
results="$out/results.jsonl"
: >"$results"
token="bench-$RANDOM$RANDOM$RANDOM"
server_pid=
failed=0
cleanup() {
  local status=$?
  [ "$status" = 0 ] || failed=1
  stop_pid "$server_pid"
  rm -rf "$tmp"
  if [ -z "$keep_out" ]; then
    if [ "$failed" = 0 ]; then rm -rf "$out"; else echo "kept results and server logs in $out" >&2; fi
  fi
}
trap cleanup EXIT
# On a signal, exit so that the EXIT trap cleans up.
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- Builds ----------------------------------------------------------------------------------

echo "== building mcpbus-bench (release) from the current tree" >&2
cargo build --release -j2 -p mcpbus-bench >&2
bench_bin="$(bench_target_dir)/release/mcpbus-bench"

rev_target=$(realpath -m "${AB_TARGET_DIR:-$tmp/target}")
mkdir -p "$tmp/bin"
# build_side SIDE: the release `mcpbus` of that side's commit, copied to $tmp/bin/mcpbus-SIDE.
build_side() {
  local side=$1 src="$tmp/src-$1"
  if [ "$side" = B ] && [ "${sha[B]}" = "${sha[A]}" ]; then
    cp "$tmp/bin/mcpbus-A" "$tmp/bin/mcpbus-B"
    return
  fi
  echo "== building mcpbus (release) of $side = ${rev[$side]} (${sha[$side]:0:12})" >&2
  mkdir -p "$src"
  # -m: the files get the extraction time, not the commit's. Cargo tells a changed workspace
  # crate from an unchanged one by modification times (its build hash of a path crate does not
  # depend on the directory), so with the commit's times B's crates, older than A's build,
  # would pass for built and A's be linked into B.
  git archive --format=tar "${sha[$side]}" | tar -x -m -C "$src"
  (cd "$src" && CARGO_TARGET_DIR=$rev_target cargo build --release -j2 -p mcpbus-cli >&2)
  if [ ! "$rev_target/release/mcpbus" -nt "$src/Cargo.toml" ]; then
    echo "FAILED: the mcpbus binary of $side was not linked from the sources just extracted" >&2
    exit 1
  fi
  cp "$rev_target/release/mcpbus" "$tmp/bin/mcpbus-$side"
}
build_start=$SECONDS
build_side A
build_side B
build_secs=$((SECONDS - build_start))

# ---- Runs --------------------------------------------------------------------------------------

bench_raise_open_files
bench_write_config "$out/bench.toml"
bench_pin

if [ "$mode" = smoke ]; then
  rps_limit=20
  rps_args=(--duration 1s --warmup 300ms)
  fanout_limit=30
  fanout_args=(--sessions 100 --events 50 --rate 50/s --drain-timeout 5s)
else
  rps_limit=30
  rps_args=(--duration 10s --warmup 2s)
  fanout_limit=90
  fanout_args=(--sessions 1000 --events 200 --rate 50/s --drain-timeout 10s)
fi

# one SIDE SECONDS SCENARIO ARGS...: the scenario against a freshly started server of that side,
# bounded in time, labelled with the side; --strict makes any error or missing event a failure.
one() {
  local side=$1 limit=$2
  shift 2
  server_bin="$tmp/bin/mcpbus-$side"
  start_mcpbus
  echo "== round $round/$rounds, $side (${rev[$side]}): $*" >&2
  if [ "$1" = fanout ]; then
    set -- "$@" --publish-url "$base/publish" --token "$token"
  fi
  run "$limit" "$@" --label "$side" --strict
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "FAILED: the server of $side exited during the run" >&2
    failed=1
  fi
  stop_mcpbus
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== mode $mode, $rounds round(s); $pinning; load average $load_before" >&2
echo "== machine: $(nproc) cores, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p')" >&2
runs_start=$SECONDS
for round in $(seq "$rounds"); do
  for clients in 1 10; do
    for side in A B; do one "$side" "$rps_limit" rps --clients "$clients" "${rps_args[@]}"; done
  done
  for side in A B; do one "$side" "$fanout_limit" fanout "${fanout_args[@]}"; done
done
runs_secs=$((SECONDS - runs_start))

expected=$((rounds * 2 * 3))
got=$(grep -c '"scenario":' "$results" || true)
if [ "$got" != "$expected" ]; then
  echo "FAILED: $got result lines, expected $expected (one per run)" >&2
  failed=1
fi

# describe SIDE: the revision as given, its commit and subject.
describe() {
  echo "$1 = ${rev[$1]} ($(git log -1 --format='%h, %s' "${sha[$1]}"))"
}

echo
echo "mcpbus A/B ($mode, $rounds round(s), each run on a fresh server), $pinning"
describe A
describe B
echo "load generator: mcpbus-bench of the current tree ($(git log -1 --format=%h HEAD))"
echo "load average (1, 5, 15 min) before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
"$bench_bin" report --change A..B "$results"
echo "== builds ${build_secs} s, runs ${runs_secs} s, ${SECONDS} s in all" >&2
if [ "$failed" != 0 ]; then
  echo "some run failed (see above)" >&2
  exit 1
fi
