#!/usr/bin/env python3
"""Interop: the official MCP Python SDK client drives `mcpbus serve --stdio`.

Usage: python_stdio_client.py MCPBUS_BINARY CONFIG_TOML

Needs the `mcp` package pinned in scripts/test.sh (1.x line: `ClientSession` and
`mcp.client.stdio.stdio_client`); `bash scripts/test.sh` installs it in .tools/py.

Steps, each checked: initialize; tools/list (publish, whoami and the tool bridge's); tools/call whoami and publish
(a retained event on build/status); resources/read mcpbus://topics and mcpbus://retained; and a
raw `events/subscribe` request (the SDK knows nothing of the events extension, so it goes through
the session's generic send_request) for build/status and this session's own agent inbox: both
must be subscribed and the retained build/status event published before must come back.

Prints one JSON summary line on success; on any mismatch prints "interop FAILED: ..." to stderr
and exits 1 (2 for bad usage, 3 when `mcp` is not importable).
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from typing import Any, Literal

try:
    import anyio
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client
    from pydantic import BaseModel, ConfigDict
except ImportError as e:  # pragma: no cover - reported to the Rust test
    print(f"interop FAILED: cannot import the MCP Python SDK ({e}); run scripts/test.sh", file=sys.stderr)
    sys.exit(3)

# The whole exchange must finish within this; every request also has its own read timeout.
OVERALL_TIMEOUT_S = 60
REQUEST_TIMEOUT = timedelta(seconds=20)

EXPECTED_TOPICS = {"build/status", "deploy/status", "alerts/+", "files/#", "agents/{agent_id}/inbox"}


class Mismatch(Exception):
    """The server answered, but not what the protocol (or the config) says it should."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Mismatch(message)


# events/subscribe as the SDK's send_request needs it: a model that dumps to {method, params}.
class EventsSubscribeParams(BaseModel):
    topics: list[str]


class EventsSubscribeRequest(BaseModel):
    method: Literal["events/subscribe"] = "events/subscribe"
    params: EventsSubscribeParams


class EventsSubscribeResult(BaseModel):
    # docs/protocol.md 2.2: {"subscribed": [{"pattern"}], "rejected": [{"pattern", "reason"}],
    # "retained": [RetainedEvent]}; unknown members are allowed.
    model_config = ConfigDict(extra="allow")
    subscribed: list[dict[str, Any]]
    rejected: list[dict[str, Any]]
    retained: list[dict[str, Any]]


def structured(result: Any, tool: str) -> dict[str, Any]:
    """The structured output of a tool result (or its JSON text content)."""
    check(not result.isError, f"tools/call {tool} returned isError: {result.content}")
    if result.structuredContent is not None:
        return result.structuredContent
    texts = [c.text for c in result.content if getattr(c, "type", None) == "text"]
    check(len(texts) >= 1, f"tools/call {tool}: no structuredContent and no text content")
    return json.loads(texts[0])


async def run(binary: str, config: str) -> dict[str, Any]:
    params = StdioServerParameters(
        command=binary,
        args=["serve", "--stdio", "--config", config],
        env={"MCPBUS_LOG": "warn"},
    )
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, read_timeout_seconds=REQUEST_TIMEOUT) as session:
            # 1. initialize
            init = await session.initialize()
            check(init.serverInfo.name == "mcpbus", f"serverInfo.name: {init.serverInfo.name!r}")
            check(init.capabilities.tools is not None, "the tools capability is missing")
            check(init.capabilities.resources is not None, "the resources capability is missing")
            caps = init.capabilities.model_dump(by_alias=True)
            events_cap = caps.get("events")  # an extension: kept as an extra member by the SDK
            check(isinstance(events_cap, dict), f"capabilities.events missing: {caps}")
            cap_patterns = {t["pattern"] for t in events_cap["topics"]}
            check(cap_patterns == EXPECTED_TOPICS, f"capabilities.events.topics: {sorted(cap_patterns)}")
            meta_session = (init.meta or {}).get("session_id")

            # 2. tools/list
            tools = await session.list_tools()
            names = sorted(t.name for t in tools.tools)
            expected = ["list_topics", "publish", "read_retained", "wait_for_events", "whoami"]
            check(names == expected, f"tools/list names: {names}")

            # 3. tools/call whoami, then publish a retained event
            who = structured(await session.call_tool("whoami", {}), "whoami")
            session_id, agent_id = who.get("sessionId"), who.get("agentId")
            check(isinstance(session_id, str) and session_id, f"whoami sessionId: {who}")
            check(isinstance(agent_id, str) and agent_id, f"whoami agentId: {who}")
            if meta_session is not None:
                check(meta_session == session_id, f"_meta.session_id {meta_session!r} != whoami {session_id!r}")
            # By default the agent id is the session id (docs/protocol.md 2.5).
            check(agent_id == session_id, f"agentId {agent_id!r} != sessionId {session_id!r}")

            payload = {"status": "green", "build": 42, "note": "from the Python SDK"}
            published = structured(
                await session.call_tool(
                    "publish", {"topic": "build/status", "payload": payload, "priority": "high"}
                ),
                "publish",
            )
            event_id = published.get("eventId")
            check(isinstance(event_id, str) and event_id, f"publish eventId: {published}")
            check(published.get("retained") is True, f"build/status is a retained topic: {published}")

            # 4. resources/read
            topics_read = await session.read_resource("mcpbus://topics")
            check(len(topics_read.contents) == 1, f"mcpbus://topics contents: {topics_read.contents}")
            topics_doc = json.loads(topics_read.contents[0].text)
            res_patterns = {t["pattern"] for t in topics_doc["topics"]}
            check(res_patterns == EXPECTED_TOPICS, f"mcpbus://topics patterns: {sorted(res_patterns)}")
            retained_read = await session.read_resource("mcpbus://retained")
            retained_doc = json.loads(retained_read.contents[0].text)
            check(
                any(e.get("eventId") == event_id for e in retained_doc["retained"]),
                f"mcpbus://retained lacks the published event {event_id}: {retained_doc}",
            )

            # 5. raw events/subscribe (the SDK has no events API)
            inbox = f"agents/{agent_id}/inbox"
            sub = await session.send_request(
                EventsSubscribeRequest(params=EventsSubscribeParams(topics=["build/status", inbox])),
                EventsSubscribeResult,
            )
            subscribed = [s.get("pattern") for s in sub.subscribed]
            check(sorted(subscribed) == sorted(["build/status", inbox]), f"subscribed: {sub.subscribed}, rejected: {sub.rejected}")
            check(sub.rejected == [], f"rejected: {sub.rejected}")
            matching = [r for r in sub.retained if r.get("topic") == "build/status"]
            check(len(matching) == 1, f"retained for build/status: {sub.retained}")
            got = matching[0]
            check(got.get("eventId") == event_id, f"retained eventId {got.get('eventId')!r} != published {event_id!r}")
            check(got.get("payload") == payload, f"retained payload: {got.get('payload')!r}")
            check(got.get("retained") is True, f"retained flag: {got}")
            check(got.get("priority") == "high", f"retained priority: {got}")

            # A foreign inbox is refused (scoped topics, docs/protocol.md 2.5).
            other = await session.send_request(
                EventsSubscribeRequest(params=EventsSubscribeParams(topics=["agents/someone-else/inbox"])),
                EventsSubscribeResult,
            )
            check(
                other.subscribed == []
                and [r.get("reason") for r in other.rejected] == ["permission_denied"],
                f"subscribing to another agent's inbox: {other.model_dump()}",
            )

            return {
                "ok": True,
                "sdk": "mcp",
                "protocolVersion": init.protocolVersion,
                "tools": names,
                "sessionId": session_id,
                "publishedEventId": event_id,
                "subscribed": subscribed,
                "retained": [r.get("topic") for r in sub.retained],
            }


def unwrap(exc: BaseException) -> BaseException:
    """anyio task groups wrap errors in exception groups: find the first real one."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


async def main_async(binary: str, config: str) -> dict[str, Any]:
    with anyio.fail_after(OVERALL_TIMEOUT_S):
        return await run(binary, config)


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    binary, config = sys.argv[1], sys.argv[2]
    try:
        summary = anyio.run(main_async, binary, config)
    except BaseException as e:  # noqa: BLE001 - every failure becomes one clear message
        inner = unwrap(e)
        if isinstance(inner, KeyboardInterrupt):
            raise
        kind = "mismatch" if isinstance(inner, Mismatch) else type(inner).__name__
        print(f"interop FAILED ({kind}): {inner}", file=sys.stderr)
        return 1
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
