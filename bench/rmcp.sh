# shellcheck shell=bash
# mcpbus vs rmcp: sourced by bench/run.sh (not run on its own). It uses run.sh's variables
# (root, target_dir, server_bin, bench_bin, server_pid, out, token, mode, pin_server, pin_bench,
# pinning, failed) and defines:
#
#   rmcp_build      builds the rmcp peer (bench/peers/rmcp-server, a crate outside the workspace,
#                   so that `cargo test --workspace` never compiles rmcp) in release, once
#   rmcp_compare    runs every comparison scenario back to back against fresh servers, mcpbus
#                   first, then the rmcp peer, and prints tables with the ratios mcpbus / rmcp
#   rmcp_stop       stops the server it started (run.sh's cleanup calls it)
#
# Each scenario gets a fresh server process, so sessions of one run never weigh on the next and
# RSS starts from a clean process. Servers are pinned like run.sh's (server on core 0, generator
# on core 1). Scenarios, full mode (about 5 minutes):
#
#   rps      tools/call "whoami", 1, 10 and 50 clients, 10 s measured after 2 s of warm-up, in
#            JSON response mode (mcpbus: response_mode = "json"; rmcp: json_response, which
#            rmcp applies only in its stateless mode) and SSE mode (both with sessions); in JSON
#            mode also in the stateless 2026-07-28 era (--era modern: no session, _meta and
#            the standard headers on every request)
#   fanout   100 and 1,000 sessions × 200 events at 50/s, 10,000 sessions × 20 events at 2/s
#            (mcpbus: events/subscribe; rmcp: resources/subscribe, notifications/resources/updated)
#   memory   10,000 idle sessions, one subscription and one GET stream each
#            (fanout and memory: mcpbus in JSON response mode, rmcp in SSE mode, its only one
#            with sessions)
#
# --smoke runs each kind once, small (about 15 s).

rmcp_pid=
rmcp_url=
rmcp_results=
rmcp_starts=0

rmcp_build() {
  echo "== building the rmcp peer (release)" >&2
  cargo build --release -j2 --manifest-path "$root/bench/peers/rmcp-server/Cargo.toml" \
    --target-dir "$target_dir/rmcp-peer" >&2
  rmcp_bin="$target_dir/rmcp-peer/release/rmcp-peer"
}

rmcp_stop() {
  if [ -n "$rmcp_pid" ] && kill -0 "$rmcp_pid" 2>/dev/null; then
    kill -TERM "$rmcp_pid" 2>/dev/null || true
    for _ in $(seq 30); do kill -0 "$rmcp_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$rmcp_pid" 2>/dev/null || true
    wait "$rmcp_pid" 2>/dev/null || true
  fi
  rmcp_pid=
}

# rmcp_start SERVER MODE: a fresh `mcpbus serve` or rmcp peer (SERVER = mcpbus | rmcp) in
# MODE json or sse; sets rmcp_pid and rmcp_url.
rmcp_start() {
  local server=$1 resp_mode=$2 log
  rmcp_stop
  # A log per start, created before the server starts, so the line read below is this server's.
  rmcp_starts=$((rmcp_starts + 1))
  log="$out/compare-$rmcp_starts-$server-$resp_mode.log"
  : >"$log"
  if [ "$server" = mcpbus ]; then
    sed "s/^response_mode = .*/response_mode = \"$resp_mode\"/" "$out/bench.toml" \
      >"$out/bench-$resp_mode.toml"
    MCPBUS_LOG=warn "${pin_server[@]}" "$server_bin" serve --listen 127.0.0.1:0 \
      --config "$out/bench-$resp_mode.toml" 2>"$log" &
  else
    local flags=()
    [ "$resp_mode" = json ] && flags=(--json)
    "${pin_server[@]}" "$rmcp_bin" --listen 127.0.0.1:0 --token "$token" "${flags[@]}" \
      2>"$log" &
  fi
  rmcp_pid=$!
  rmcp_url=
  for _ in $(seq 100); do
    rmcp_url=$(sed -n 's/^[a-z-]*: listening on \(http:[^ ]*\)$/\1/p' "$log")
    [ -n "$rmcp_url" ] && return 0
    kill -0 "$rmcp_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "FAILED: $server ($resp_mode) did not start:" >&2
  cat "$log" >&2
  failed=1
  return 1
}

# rmcp_run SECONDS LABEL SCENARIO ARGS...: one scenario against the running server, bounded in
# time; its JSON line goes to the comparison results.
rmcp_run() {
  local limit=$1 label=$2
  shift 2
  if ! timeout --kill-after=5 "$limit" "${pin_bench[@]}" "$bench_bin" "$@" --label "$label" \
      --url "$rmcp_url" --server-pid "$rmcp_pid" --json >>"$rmcp_results"; then
    echo "FAILED: mcpbus-bench $* --label $label" >&2
    failed=1
  fi
}

# rmcp_rps SERVER ERA: the rps runs against the running server, in the given era.
rmcp_rps() {
  local server=$1 era=$2 clients
  if [ "$mode" = smoke ]; then
    rmcp_run 20 "$server" rps --era "$era" --clients 2 --duration 1s --warmup 300ms --strict
  else
    for clients in 1 10 50; do
      rmcp_run 30 "$server" rps --era "$era" --clients "$clients" --duration 10s --warmup 2s
    done
  fi
}

# The subscription method of each server in fanout and memory.
rmcp_subscribe_method() {
  if [ "$1" = mcpbus ]; then echo events; else echo resources; fi
}

# The response mode of each server in fanout and memory: one with sessions.
rmcp_session_mode() {
  if [ "$1" = mcpbus ]; then echo json; else echo sse; fi
}

rmcp_compare() {
  # run.sh's own server has done its part: free its core for the fresh servers.
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rmcp_results="$out/rmcp-compare.jsonl"
  : >"$rmcp_results"
  local server resp_mode clients sessions sub
  echo "== mcpbus vs rmcp ($mode)" >&2
  for resp_mode in json sse; do
    for server in mcpbus rmcp; do
      rmcp_start "$server" "$resp_mode" || continue
      rmcp_rps "$server" legacy
      # The stateless 2026-07-28 era next to it, on the same server (JSON answers).
      [ "$resp_mode" = json ] && rmcp_rps "$server" modern
    done
  done
  # Fan-out and memory need sessions and GET streams: SSE mode for rmcp (its JSON mode is
  # stateless); mcpbus streams events and keeps sessions the same way in either mode, and in its
  # JSON mode the setup POSTs do not wait for delayed ACKs (see the SSE rps rows).
  # The sizes and rates of run.sh's mcpbus / Mosquitto fan-out, so all three compare.
  local fanout_runs=("100 200 50/s" "1000 200 50/s" "10000 20 2/s")
  [ "$mode" = smoke ] && fanout_runs=("20 20 50/s")
  local run events rate
  for run in "${fanout_runs[@]}"; do
    read -r sessions events rate <<<"$run"
    for server in mcpbus rmcp; do
      rmcp_start "$server" "$(rmcp_session_mode "$server")" || continue
      sub=$(rmcp_subscribe_method "$server")
      local strict=()
      [ "$mode" = smoke ] && strict=(--strict)
      rmcp_run 120 "$server" fanout --publish-url "${rmcp_url%/mcp}/publish" --token "$token" \
        --sessions "$sessions" --events "$events" --rate "$rate" --drain-timeout 20s \
        --subscribe-method "$sub" "${strict[@]}"
    done
  done
  sessions=10000
  [ "$mode" = smoke ] && sessions=100
  for server in mcpbus rmcp; do
    rmcp_start "$server" "$(rmcp_session_mode "$server")" || continue
    sub=$(rmcp_subscribe_method "$server")
    rmcp_run 120 "$server" memory --sessions "$sessions" --subscribe-method "$sub" --settle 2s \
      --strict
  done
  rmcp_stop
  local rmcp_version
  rmcp_version=$(awk '/^name = "rmcp"$/ { getline; gsub(/version = |"/, ""); print }' \
    "$root/bench/peers/rmcp-server/Cargo.lock")
  echo
  echo "mcpbus vs rmcp $rmcp_version ($mode), $pinning"
  echo
  "$bench_bin" report --ratio mcpbus/rmcp "$rmcp_results"
}
