"""The Redis event store of the Python package mcp-persist under the load of `mcpbus-bench
redis-store`: same phases, same messages, same JSON line (see bench/src/redis_store.rs).

1. append: one writer stores N messages (`store_event`) on one stream, one at a time.
2. replay: `replay_events_after(id, send_callback)` (the SDK's EventStore interface) from the
   event N - R, so that it sends the newest R events; R events each time, checked.
3. append_concurrent: W writers (asyncio tasks, each its own stream) store N messages in all.

The store is mcp-persist's `RedisEventStore.create(url, ttl=3600, max_stream_length=4096)`:
the TTL and the per-stream bound of mcpbus-redis's defaults. Streams are named
`<session>:<stream>` as mcp-persist's SessionScopedSessionManager names them. Run with the
venv bench/redis.sh installs (requirements.txt beside this file); Python's default asyncio
loop, redis-py without hiredis (what `pip install mcp-persist[redis]` gives).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
from importlib.metadata import version

from mcp.server.streamable_http import EventMessage
from mcp_persist import RedisEventStore
from mcp_types import JSONRPCMessage
from pydantic import TypeAdapter

STREAM = "s"
TTL_SECS = 3600
MAX_STREAM_LENGTH = 4096

adapter = TypeAdapter(JSONRPCMessage)


def message(seq: int, size: int) -> str:
    """The JSON-RPC notification stored as message `seq`, `size` bytes (as redis_store.rs)."""
    head = (
        '{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info",'
        f'"logger":"bench","data":{{"seq":{seq},"text":"'
    )
    tail = '"}}}'
    return head + "x" * max(0, size - len(head) - len(tail)) + tail


def latency(ns: list[int]) -> dict:
    """Count, mean and nearest-rank percentiles of latencies given in ns, in µs."""
    if not ns:
        return {"count": 0, "mean_us": 0.0, "p50_us": 0.0, "p90_us": 0.0, "p99_us": 0.0, "max_us": 0.0}
    s = sorted(ns)

    def q(p: float) -> float:
        return round(s[max(0, math.ceil(p * len(s)) - 1)] / 1000, 1)

    return {
        "count": len(s),
        "mean_us": round(sum(s) / len(s) / 1000, 1),
        "p50_us": q(0.50),
        "p90_us": q(0.90),
        "p99_us": q(0.99),
        "max_us": round(s[-1] / 1000, 1),
    }


class Probe:
    """CPU time of this process and of the Redis server (INFO cpu), Redis's used_memory."""

    def __init__(self, client) -> None:
        self.client = client

    async def redis_cpu(self) -> float | None:
        try:
            info = await self.client.info("cpu")
            return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
        except Exception:  # noqa: BLE001 - a figure, not the measurement
            return None

    async def cpu(self) -> tuple[float, float | None]:
        return time.process_time(), await self.redis_cpu()

    async def used_memory(self) -> int | None:
        try:
            return int((await self.client.info("memory"))["used_memory"])
        except Exception:  # noqa: BLE001
            return None


def phase(ops: int, writers: int, secs: float, lat: list[int], before, after) -> dict:
    def per_op(b, a):
        return None if b is None or a is None else round((a - b) * 1e6 / max(ops, 1), 1)

    return {
        "ops": ops,
        "writers": writers,
        "secs": round(secs, 2),
        "per_s": round(ops / max(secs, 1e-9), 1),
        "latency": latency(lat),
        "client_cpu_us_per_op": per_op(before[0], after[0]),
        "redis_cpu_us_per_op": per_op(before[1], after[1]),
    }


class Errors:
    def __init__(self) -> None:
        self.count = 0
        self.first: str | None = None

    def add(self, what: str) -> None:
        self.count += 1
        if self.first is None:
            print(f"bench_persist: {what}", file=sys.stderr)
            self.first = what


def check(what: str, got: list[EventMessage], ids: list[str], texts: list[str], errors: Errors) -> None:
    """`got` must be exactly the events `ids` carrying `texts`, in order."""
    if len(got) != len(ids):
        errors.add(f"{what}: {len(got)} events replayed, {len(ids)} expected")
        return
    for i, (event, eid, text) in enumerate(zip(got, ids, texts)):
        if event.event_id != eid:
            errors.add(f"{what}: event {i} has id {event.event_id!r}, expected {eid!r}")
            return
        if event.message.model_dump_json(by_alias=True, exclude_none=True) != text:
            errors.add(f"{what}: event {i} ({eid}) carries another message than was stored")
            return


async def append_all(store: RedisEventStore, stream: str, messages: list, lat: list[int]) -> list[str]:
    ids = []
    for m in messages:
        t = time.perf_counter_ns()
        ids.append(await store.store_event(stream, m))
        lat.append(time.perf_counter_ns() - t)
    return ids


async def replay(store: RedisEventStore, after: str, stream: str | None = None) -> list[EventMessage]:
    """The events `replay_events_after` sends. The timed replays pass no stream, as the SDK
    does; the checks of whole streams name it (mcp-persist's own extension), since the id
    before a stream's first event is some other stream's or none."""
    got: list[EventMessage] = []

    async def send(event: EventMessage) -> None:
        got.append(event)

    if stream is None:
        await store.replay_events_after(after, send)
    else:
        await store.replay_events_after(after, send, stream)
    return got


async def check_stream(
    store: RedisEventStore, stream: str, ids: list[str], texts: list[str], errors: Errors
) -> None:
    """The whole stream back: the newest (up to MAX_STREAM_LENGTH) of what was stored."""
    kept = min(len(ids), MAX_STREAM_LENGTH)
    ids, texts = ids[len(ids) - kept :], texts[len(texts) - kept :]
    got = await replay(store, str(int(ids[0]) - 1), stream)
    check(f"reading back {stream}", got, ids, texts, errors)


async def run(args: argparse.Namespace) -> dict:
    n, r = args.appends, args.replay_events
    if not 0 < r < min(n, MAX_STREAM_LENGTH):
        raise SystemExit("--replay-events must be at least 1 and below --appends and 4096")
    tag = f"{os.getpid()}-{int(time.time() * 1000)}"
    errors = Errors()
    async with RedisEventStore.create(
        args.redis_url, key_prefix=f"{args.prefix}:", ttl=TTL_SECS, max_stream_length=MAX_STREAM_LENGTH
    ) as store:
        probe = Probe(store._redis)
        redis_version = (await store._redis.info("server")).get("redis_version")

        # Phase 1: one writer, one stream.
        stream = f"seq-{tag}:{STREAM}"
        texts = [message(i, args.message_bytes) for i in range(n)]
        messages = [adapter.validate_json(t) for t in texts]
        memory_before = await probe.used_memory()
        before = await probe.cpu()
        lat: list[int] = []
        start = time.perf_counter()
        ids = await append_all(store, stream, messages, lat)
        secs = time.perf_counter() - start
        append = phase(n, 1, secs, lat, before, await probe.cpu())
        memory_after = await probe.used_memory()
        await check_stream(store, stream, ids, texts, errors)

        # Phase 2: replay the newest r events.
        anchor = ids[n - r - 1]
        what = f"replay after {anchor}"
        for _ in range(args.warmup_replays):
            await replay(store, anchor)
        lat = []
        before = await probe.cpu()
        start = time.perf_counter()
        for _ in range(args.replays):
            t = time.perf_counter_ns()
            got = await replay(store, anchor)
            lat.append(time.perf_counter_ns() - t)
            check(what, got, ids[n - r :], texts[n - r :], errors)
        secs = time.perf_counter() - start
        replayed = phase(args.replays, 1, secs, lat, before, await probe.cpu())

        # Phase 3: W writers at once.
        concurrent = None
        writers = min(args.writers, n)
        if writers > 0:
            counts = [n // writers + (1 if w < n % writers else 0) for w in range(writers)]
            per_writer = [[message(i, args.message_bytes) for i in range(c)] for c in counts]
            models = [[adapter.validate_json(t) for t in ts] for ts in per_writer]
            lats: list[list[int]] = [[] for _ in range(writers)]
            streams = [f"w{w}-{tag}:{STREAM}" for w in range(writers)]
            before = await probe.cpu()
            start = time.perf_counter()
            results = await asyncio.gather(
                *(append_all(store, streams[w], models[w], lats[w]) for w in range(writers))
            )
            secs = time.perf_counter() - start
            concurrent = phase(n, writers, secs, [x for lw in lats for x in lw], before, await probe.cpu())
            for w, wids in enumerate(results):
                await check_stream(store, streams[w], wids, per_writer[w], errors)

    return {
        "scenario": "redis-store",
        "label": args.label,
        "store": f"mcp-persist {version('mcp-persist')} (redis-py {version('redis')})",
        "redis_version": redis_version,
        "message_bytes": args.message_bytes,
        "appends": n,
        "replay_events": r,
        "append": append,
        "replay": replayed,
        "append_concurrent": concurrent,
        "kept_events": min(n, MAX_STREAM_LENGTH),
        "redis_memory_bytes": None if memory_before is None or memory_after is None else memory_after - memory_before,
        "errors": errors.count,
        "first_error": errors.first,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--redis-url", required=True)
    p.add_argument("--label", default="mcp-persist")
    p.add_argument("--prefix", default="mcp-persist-bench")
    p.add_argument("--appends", type=int, default=5000)
    p.add_argument("--writers", type=int, default=8)
    p.add_argument("--replay-events", type=int, default=100)
    p.add_argument("--replays", type=int, default=200)
    p.add_argument("--warmup-replays", type=int, default=20)
    p.add_argument("--message-bytes", type=int, default=200)
    p.add_argument("--strict", action="store_true", help="exit 1 if any replay was not what was stored")
    args = p.parse_args()
    result = asyncio.run(run(args))
    print(json.dumps(result, ensure_ascii=False), flush=True)
    c, rp = result["append"], result["replay"]
    print(
        f"redis-store: {args.label}: {c['per_s']:.0f} appends/s (p50 {c['latency']['p50_us']} µs), "
        f"replay {result['replay_events']} events p50 {rp['latency']['p50_us']} µs, errors {result['errors']}",
        file=sys.stderr,
    )
    return 1 if args.strict and result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
