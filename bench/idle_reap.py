#!/usr/bin/env python3
"""Idle sessions abandoned at scale: are they reaped, and does the memory come back?

Usage: python3 bench/idle_reap.py MCPBUS_BINARY [SESSIONS] [ROUNDS]
  (the release binary: cargo build --release -p mcpbus-cli; target/release/mcpbus)

Starts `mcpbus serve` on a free loopback port with the embedded configuration and a 3 s
session idle timeout, warms it up (3 x 1,000 sessions, reaped), then opens SESSIONS sessions
(default 10,000) with `initialize` and abandons them without DELETE, as clients that just go
away do. It prints the server's RSS (from /proc) at the baseline, once they are open, and once
the idle timeout has reaped them (`/healthz` sessions back to 0); then ROUNDS more times
(default 3) the same, to tell memory the allocator keeps for reuse (a plateau) from a leak
(growth every round). Loopback only; Linux only (/proc).
"""

import http.client
import json
import os
import subprocess
import sys
import tempfile
import time

INIT = json.dumps({
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {},
               "clientInfo": {"name": "idle-reap", "version": "1"}},
})
HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def start(binary: str) -> tuple[subprocess.Popen, str, int]:
    config = subprocess.run([binary, "config"], check=True, capture_output=True, text=True).stdout
    config = config.replace("session_idle_timeout_secs = 1800", "session_idle_timeout_secs = 3")
    path = os.path.join(tempfile.mkdtemp(prefix="mcpbus-idle-"), "config.toml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(config)
    env = {**os.environ, "MCPBUS_LOG": "warn"}
    proc = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", "--config", path],
                            stderr=subprocess.PIPE, text=True, env=env)
    while True:
        line = proc.stderr.readline()
        if not line:
            sys.exit("mcpbus serve exited before listening")
        if "listening on http://" in line:
            host, port = line.split("http://")[1].split("/")[0].split(":")
            return proc, host, int(port)


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    binary = sys.argv[1]
    sessions = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    proc, host, port = start(binary)

    def rss_kib() -> int:
        with open(f"/proc/{proc.pid}/status", encoding="utf-8") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))

    def open_sessions(n: int) -> None:
        conn = http.client.HTTPConnection(host, port)
        for _ in range(n):
            conn.request("POST", "/mcp", INIT, HEADERS)
            answer = conn.getresponse()
            answer.read()
            if answer.status != 200:
                sys.exit(f"initialize answered {answer.status}")

    def live_sessions() -> int:
        conn = http.client.HTTPConnection(host, port)
        conn.request("GET", "/healthz")
        return json.loads(conn.getresponse().read())["sessions"]

    def reaped(within: float) -> None:
        deadline = time.time() + within
        while live_sessions() and time.time() < deadline:
            time.sleep(0.5)
        time.sleep(2)

    try:
        for _ in range(3):
            open_sessions(1000)
            reaped(15)
        base = rss_kib()
        print(f"baseline: {base / 1024:.1f} MiB, {live_sessions()} sessions")
        for n in range(1 + rounds):
            open_sessions(sessions)
            opened = rss_kib()
            reaped(30)
            after = rss_kib()
            print(f"round {n}: {sessions} sessions open {opened / 1024:.1f} MiB; reaped "
                  f"({live_sessions()} left) {after / 1024:.1f} MiB = {after / base:.2f} x baseline")
    finally:
        proc.terminate()
        proc.wait(timeout=15)


if __name__ == "__main__":
    main()
