#!/usr/bin/env python3
"""Idle sessions abandoned at scale: are they reaped, and does the memory come back?

Usage: python3 bench/idle_reap.py MCPBUS_BINARY [SESSIONS] [ROUNDS]
  (the release binary: cargo build --release -p mcpbus-cli; target/release/mcpbus)

Starts `mcpbus serve` on a free loopback port with the embedded configuration and a 3 s
session idle timeout, warms it up (3 x 1,000 sessions, reaped), then opens SESSIONS sessions
(default 10,000) with `initialize` and abandons them without DELETE, as clients that just go
away do. It prints the server's RSS (from /proc) at the baseline, once they are open, and once
the idle timeout has reaped them (`/healthz` sessions back to 0) and the server has had
time to give the freed memory back to the system (it trims glibc's allocator after a sharp
drop in sessions, within about 3 s); then ROUNDS more times (default 3) the same, to tell
memory the allocator keeps for reuse (a plateau) from a leak (growth every round). Last, the
server's trims of the allocator (from its log): what each released and how long it took.
Loopback only; Linux only (/proc).
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


def start(binary: str) -> tuple[subprocess.Popen, str, int, str]:
    config = subprocess.run([binary, "config"], check=True, capture_output=True, text=True).stdout
    config = config.replace("session_idle_timeout_secs = 1800", "session_idle_timeout_secs = 3")
    folder = tempfile.mkdtemp(prefix="mcpbus-idle-")
    path = os.path.join(folder, "config.toml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(config)
    # Warnings, and the lines of the task that trims the allocator (the binary's crate is
    # `mcpbus`). To a file: a pipe nobody reads would block the server once full.
    env = {**os.environ, "MCPBUS_LOG": "warn,mcpbus::trim=info"}
    log = os.path.join(folder, "server.log")
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", "--config", path],
                                stderr=out, text=True, env=env)
    for _ in range(100):
        with open(log, encoding="utf-8") as f:
            for line in f:
                if "listening on http://" in line:
                    host, port = line.split("http://")[1].split("/")[0].split(":")
                    return proc, host, int(port), log
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    sys.exit("mcpbus serve exited before listening")


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    binary = sys.argv[1]
    sessions = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    proc, host, port, log = start(binary)

    def rss_kib(field: str = "VmRSS") -> int:
        with open(f"/proc/{proc.pid}/status", encoding="utf-8") as f:
            return next(int(l.split()[1]) for l in f if l.startswith(field + ":"))

    def anon() -> str:
        # RSS less the pages of the binary and libraries mapped from files (clean, which
        # the kernel can drop): what the heap and the stacks hold.
        return f"{rss_kib('RssAnon') / 1024:.1f} MiB anonymous"

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
        # The server looks at its sessions every 2 s and trims 1 s after a sharp drop.
        time.sleep(5)

    try:
        for _ in range(3):
            open_sessions(1000)
            reaped(15)
        base = rss_kib()
        print(f"baseline: {base / 1024:.1f} MiB ({anon()}), {live_sessions()} sessions")
        for n in range(1 + rounds):
            open_sessions(sessions)
            opened = rss_kib()
            reaped(30)
            after = rss_kib()
            print(f"round {n}: {sessions} sessions open {opened / 1024:.1f} MiB; reaped "
                  f"({live_sessions()} left) {after / 1024:.1f} MiB ({anon()}) = "
                  f"{after / base:.2f} x baseline")
        trims = [l for l in open(log, encoding="utf-8") if "gave the allocator" in l]
        took = sorted(int(l.split("took_us=")[1].split()[0]) for l in trims if "took_us=" in l)
        if took:
            print(f"{len(trims)} trims of the allocator, {took[len(took) // 2] / 1000:.1f} ms median, "
                  f"{took[-1] / 1000:.1f} ms longest, {sum(took) / 1000:.1f} ms in all")
        for line in trims:
            print("  " + line.strip())
    finally:
        proc.terminate()
        proc.wait(timeout=15)


if __name__ == "__main__":
    main()
