#!/usr/bin/env python3
"""Interop: the official MCP Python SDK drives mcpbus's tool bridge with nothing but tool calls.

Usage: python_bridge_client.py WAIT_URL PUBLISH_URL
  WAIT_URL and PUBLISH_URL are MCP endpoints of `mcpbus serve` (the same server, or two replicas
  sharing Redis) configured as crates/mcpbus-cli/tests/fixtures/http.toml (the publish tool on,
  the tool bridge on by default).

Works with the SDK 1.x (`ClientSession` over `streamable_http_client`: the handshake era) and
2.x (`mcp.Client` in its default mode: MCP 2026-07-28); no events extension code at all, as a
host that only knows tools would. Steps, each checked: the bridge's tools are listed; a
`wait_for_events` on build/+ without a cursor comes back empty with a cursor; an event published
through the `publish` tool by a second client (on PUBLISH_URL) is returned by a wait from that
cursor, with the publish's eventId, as structured content and as a provenance envelope; a wait
held open while a third event is published returns it and only it (the second is not repeated).

Prints one JSON summary line on success; on any mismatch prints "interop FAILED: ..." to stderr
and exits 1 (2 for bad usage, 3 when `mcp` is not importable).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import sys
from typing import Any, AsyncIterator

try:
    import anyio

    SDK = importlib.metadata.version("mcp")
    if SDK.startswith("1."):
        import httpx as http_lib
        from mcp import ClientSession
        from mcp.client.streamable_http import streamable_http_client
    else:
        import httpx2 as http_lib
        from mcp import Client
        from mcp.client.streamable_http import streamable_http_client
except ImportError as e:
    print(f"interop FAILED: cannot import the MCP Python SDK ({e}); run scripts/test.sh", file=sys.stderr)
    sys.exit(3)

TOPIC = "alerts/+"
BRIDGE = {"list_topics", "read_retained", "wait_for_events"}


class Failed(Exception):
    pass


def check(ok: bool, what: str) -> None:
    if not ok:
        raise Failed(what)


@contextlib.asynccontextmanager
async def connect(url: str) -> AsyncIterator[Any]:
    """A connected client of `url` with `call_tool` and `list_tools`, in the SDK's own way."""
    async with http_lib.AsyncClient(trust_env=False, timeout=http_lib.Timeout(30, read=120)) as http:
        if SDK.startswith("1."):
            async with streamable_http_client(url, http_client=http) as (read, write, _):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    yield session
        else:
            async with Client(streamable_http_client(url, http_client=http)) as client:
                yield client


def structured(result: Any, tool: str) -> dict[str, Any]:
    # The SDK 1.x names the fields as the wire does (isError), 2.x in snake case.
    is_error = getattr(result, "is_error", None) or getattr(result, "isError", None)
    body = getattr(result, "structured_content", None) or getattr(result, "structuredContent", None)
    check(not is_error, f"{tool} returned isError: {result.content}")
    check(isinstance(body, dict), f"{tool}: no structuredContent")
    return body


def texts(result: Any) -> list[str]:
    return [c.text for c in result.content if getattr(c, "type", None) == "text"]


async def wait(client: Any, cursor: str | None, timeout_ms: int) -> tuple[list[dict[str, Any]], str, Any]:
    args: dict[str, Any] = {"topic": TOPIC, "timeout_ms": timeout_ms}
    if cursor is not None:
        args["cursor"] = cursor
    result = await client.call_tool("wait_for_events", args)
    body = structured(result, "wait_for_events")
    check(isinstance(body.get("cursor"), str), f"wait_for_events: no cursor in {body}")
    return body["events"], body["cursor"], result


async def publish(client: Any, n: int) -> str:
    body = {"topic": "alerts/disk", "payload": {"n": n}}
    report = structured(await client.call_tool("publish", body), "publish")
    return report["eventId"]


async def run(wait_url: str, publish_url: str) -> dict[str, Any]:
    async with connect(wait_url) as waiter, connect(publish_url) as publisher:
        names = {t.name for t in (await waiter.list_tools()).tools}
        check(BRIDGE <= names, f"tools/list lacks the bridge: {sorted(names)}")

        events, cursor, _ = await wait(waiter, None, 200)
        check(events == [], f"a wait from now found {events}")

        first = await publish(publisher, 1)
        events, after_first, result = await wait(waiter, cursor, 10_000)
        check([e["eventId"] for e in events] == [first], f"wait after publish: {events}")
        check(events[0]["payload"] == {"n": 1}, f"payload: {events[0]}")
        envelope = texts(result)[0]
        check(envelope.startswith("<mcp:event ") and f'event_id="{first}"' in envelope, f"envelope: {envelope}")

        # A wait held open receives the next event, and only it.
        second: list[str] = []
        held: dict[str, Any] = {}

        async def hold() -> None:
            found, next_cursor, _ = await wait(waiter, after_first, 10_000)
            held.update(events=found, cursor=next_cursor)

        async with anyio.create_task_group() as tg:
            tg.start_soon(hold)
            await anyio.sleep(0.3)
            second.append(await publish(publisher, 2))
        check([e["eventId"] for e in held["events"]] == second, f"held wait: {held['events']}")
        check(held["cursor"] != after_first, "the cursor did not advance")
    return {"ok": True, "sdk": SDK, "first": first, "second": second[0]}


def main() -> None:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    try:
        summary = anyio.run(run, sys.argv[1], sys.argv[2])
    except (Failed, BaseExceptionGroup) as e:
        # A failed check inside the SDK's task groups arrives wrapped in exception groups.
        while isinstance(e, BaseExceptionGroup) and len(e.exceptions) == 1:
            e = e.exceptions[0]
        if not isinstance(e, Failed):
            raise
        print(f"interop FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
