#!/usr/bin/env python3
"""Interop at MCP 2026-07-28: the official MCP Python SDK 2.x client, in its default mode.

Usage: python_modern_client.py SERVE_URL FIXTURE_URL
  SERVE_URL is the MCP endpoint of `mcpbus serve` (http://127.0.0.1:PORT/mcp), configured as
  crates/mcpbus-cli/tests/fixtures/confirm.toml (the publish and whoami tools, its topics, and
  urgent events published only once the user confirmed); FIXTURE_URL the endpoint of the test's
  fixture server (crates/mcpbus-cli/tests/interop_modern.rs), which has the one thing `mcpbus
  serve` cannot do: announce a tool list change (`announce_tools_changed`).

Needs the `mcp` package pinned in tests/interop/requirements-mcp2.txt (2.3.x: `mcp.Client`);
`bash scripts/test.sh` installs it in .tools/py-mcp2.

`Client(...)` is used as an application would use it, in its default `mode="auto"`: it probes
`server/discover` and must settle on 2026-07-28 (never `initialize`). Steps, each checked:

  mcpbus serve: the negotiated revision and the server's name; the events capability under
  `experimental["mcpbus/events"]` (the SDK drops the top-level `events` it does not know);
  list_tools; call_tool whoami; `Client.listen(resource_subscriptions=["mcpbus://retained"])`,
  then call_tool publish of an urgent event on build/status, which the server confirms with the
  user first: it answers `input_required`, the SDK calls its elicitation callback and retries
  with `inputResponses` and the sealed `requestState`; the event published, the listen stream
  must yield ResourceUpdated for mcpbus://retained; list_resources; read_resource
  mcpbus://retained (holds the event) and mcpbus://topics.
  The fixture: `Client.listen(tools_list_changed=True)`, then call_tool announce_tools_changed,
  and the listen stream must yield ToolsListChanged.

What went on the wire is recorded by httpx2 event hooks on the HTTP client given to the SDK
(headers and request bodies): no `initialize`, no `Mcp-Session-Id`, every POST with
`MCP-Protocol-Version: 2026-07-28`, and the MRTR retry's `inputResponses`/`requestState`.

Prints one JSON summary line on success; on any mismatch prints "interop FAILED: ..." to stderr
and exits 1 (2 for bad usage, 3 when `mcp` 2.x is not importable).
"""

from __future__ import annotations

import json
import sys
from typing import Any

try:
    import anyio
    import httpx2
    import mcp_types as types
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.client.subscriptions import ResourceUpdated, Subscription, ToolsListChanged
except ImportError as e:  # pragma: no cover - reported to the Rust test
    print(f"interop FAILED: cannot import the MCP Python SDK 2.x ({e}); run scripts/test.sh", file=sys.stderr)
    sys.exit(3)

OVERALL_TIMEOUT_S = 90
REQUEST_TIMEOUT_S = 20
# How long a change may take from the tool call that announces it to the listen stream.
CHANGE_TIMEOUT_S = 15
MODERN = "2026-07-28"


class Mismatch(Exception):
    """The server answered, but not what the protocol (or the fixture) says it should."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Mismatch(message)


class Wire:
    """What the SDK sent and got back, as httpx2 saw it: one record per HTTP exchange."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.session_ids: list[str] = []

    async def on_request(self, request: httpx2.Request) -> None:
        body: Any = None
        if request.method == "POST":
            try:
                body = json.loads(request.content)
            except (ValueError, httpx2.RequestNotRead):
                body = None
        self.requests.append(
            {
                "method": request.method,
                "mcpMethod": request.headers.get("mcp-method"),
                "version": request.headers.get("mcp-protocol-version"),
                "body": body,
            }
        )

    async def on_response(self, response: httpx2.Response) -> None:
        sid = response.headers.get("mcp-session-id")
        if sid:
            self.session_ids.append(sid)

    def client(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(
            timeout=httpx2.Timeout(30, read=300),
            trust_env=False,  # loopback only: no proxy from the environment
            event_hooks={"request": [self.on_request], "response": [self.on_response]},
        )

    def methods(self) -> list[str | None]:
        return [r["body"].get("method") if isinstance(r["body"], dict) else None for r in self.requests]

    def check_modern(self, what: str) -> None:
        methods = self.methods()
        check(bool(methods) and methods[0] == "server/discover", f"{what}: first request {methods[:1]}, not server/discover")
        check("initialize" not in methods, f"{what}: the SDK fell back to initialize: {methods}")
        check(self.session_ids == [], f"{what}: the server handed out Mcp-Session-Id {self.session_ids}")
        posts = [r for r in self.requests if r["method"] == "POST"]
        wrong = [(r["mcpMethod"], r["version"]) for r in posts if r["version"] != MODERN]
        check(wrong == [], f"{what}: POSTs without MCP-Protocol-Version {MODERN}: {wrong}")
        check(all(r["method"] == "POST" for r in self.requests), f"{what}: non-POST requests {self.requests}")


def structured(result: types.CallToolResult, tool: str) -> dict[str, Any]:
    check(not result.is_error, f"tools/call {tool} returned isError: {result.content}")
    if result.structured_content is not None:
        return result.structured_content
    texts = [c.text for c in result.content if getattr(c, "type", None) == "text"]
    check(len(texts) >= 1, f"tools/call {tool}: no structuredContent and no text content")
    return json.loads(texts[0])


def resource_json(result: types.ReadResourceResult, uri: str) -> Any:
    texts = [getattr(c, "text", None) for c in result.contents]
    check(len(texts) == 1 and isinstance(texts[0], str), f"resources/read {uri}: {result.contents}")
    return json.loads(texts[0])


CLIENT_INFO = types.Implementation(name="mcpbus-interop-python-modern", version="1")
RETAINED = "mcpbus://retained"


async def next_change(subscription: Subscription, what: str) -> Any:
    """The next event of a listen stream, within CHANGE_TIMEOUT_S."""
    try:
        with anyio.fail_after(CHANGE_TIMEOUT_S):
            return await subscription.__anext__()
    except TimeoutError:
        raise Mismatch(f"no {what} on the listen stream within {CHANGE_TIMEOUT_S} s") from None


def mrtr_retry(wire: Wire, tool: str) -> dict[str, Any]:
    """The params of the retry of `tool`, checked: the first call went out bare, the retry with
    one answer in `inputResponses` and the sealed `requestState`."""
    calls = [r["body"]["params"] for r in wire.requests if isinstance(r["body"], dict) and r["body"].get("method") == "tools/call"]
    sent = [c for c in calls if c.get("name") == tool]
    check(len(sent) == 2, f"{tool} went out {len(sent)} times (expected: the call and its retry)")
    first, retry = sent
    check("requestState" not in first and "inputResponses" not in first, f"first call: {first}")
    check(len(retry.get("inputResponses") or {}) == 1, f"the retry's inputResponses: {retry}")
    check(isinstance(retry.get("requestState"), str) and retry["requestState"], f"the retry has no requestState: {retry}")
    return retry


async def publish_confirmed(client: Client, asked: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """An urgent publish, confirmed by the elicitation callback, heard on a listen stream of
    mcpbus://retained. The publish's report and what was published."""
    body = {"topic": "build/status", "payload": {"status": "red", "via": "python-modern"}, "priority": "urgent"}
    async with client.listen(resource_subscriptions=[RETAINED]) as subscription:
        honored = subscription.honored.resource_subscriptions
        check(honored == [RETAINED], f"listen honoured {subscription.honored}")
        report = structured(await client.call_tool("publish", body), "publish")
        update = await next_change(subscription, f"update of {RETAINED}")
    check(isinstance(update, ResourceUpdated) and update.uri == RETAINED, f"listen yielded {update!r}")
    check(len(asked) == 1, f"the elicitation callback ran {len(asked)} times: {asked}")
    check("urgent" in asked[0]["message"] and "build/status" in asked[0]["message"], f"elicitation: {asked}")
    check("publish" in asked[0]["schema"].get("properties", {}), f"elicitation schema: {asked}")
    check(isinstance(report.get("eventId"), str) and report.get("retained") is True, f"publish: {report}")
    return report, body


async def against_serve(url: str) -> dict[str, Any]:
    """The product server: discover, tools, a confirmed publish, resources, listen."""
    wire = Wire()
    asked: list[dict[str, Any]] = []

    async def elicitation(_context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        check(isinstance(params, types.ElicitRequestFormParams), f"elicitation params: {params!r}")
        asked.append({"message": params.message, "schema": dict(params.requested_schema)})
        return types.ElicitResult(action="accept", content={"publish": True})

    async with wire.client() as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(
            transport,
            client_info=CLIENT_INFO,
            read_timeout_seconds=REQUEST_TIMEOUT_S,
            elicitation_callback=elicitation,
        ) as client:
            check(client.protocol_version == MODERN, f"negotiated {client.protocol_version!r}")
            info = client.server_info
            check(info is not None and info.name == "mcpbus", f"server_info: {info}")
            caps = client.server_capabilities
            events = (caps.experimental or {}).get("mcpbus/events")
            check(isinstance(events, dict), f"capabilities.experimental['mcpbus/events'] missing: {caps}")
            patterns = sorted(t.get("pattern") for t in events.get("topics", []))
            check("build/status" in patterns, f"experimental events topics: {patterns}")

            tools = sorted(t.name for t in (await client.list_tools()).tools)
            check({"publish", "whoami"} <= set(tools), f"tools/list: {tools}")
            who = structured(await client.call_tool("whoami", {}), "whoami")
            check(isinstance(who.get("agentId"), str) and who["agentId"], f"whoami: {who}")
            report, body = await publish_confirmed(client, asked)

            uris = sorted(str(r.uri) for r in (await client.list_resources()).resources)
            check({RETAINED, "mcpbus://topics"} <= set(uris), f"resources/list: {uris}")
            retained = resource_json(await client.read_resource(RETAINED), RETAINED)
            held = [e for e in retained.get("retained", []) if e.get("eventId") == report["eventId"]]
            check(len(held) == 1 and held[0].get("payload") == body["payload"], f"{RETAINED}: {retained}")
            topics = resource_json(await client.read_resource("mcpbus://topics"), "mcpbus://topics")
            check(
                any(t.get("pattern") == "build/status" for t in topics.get("topics", [])),
                f"mcpbus://topics: {topics}",
            )
    wire.check_modern("mcpbus serve")
    retry = mrtr_retry(wire, "publish")
    answer = next(iter(retry["inputResponses"].values()))
    check(answer.get("action") == "accept" and answer.get("content") == {"publish": True}, f"retry: {retry}")
    return {
        "protocolVersion": MODERN,
        "tools": tools,
        "resources": uris,
        "experimentalEventsTopics": patterns,
        "elicitation": asked[0]["message"],
        "inputResponseKeys": sorted(retry["inputResponses"]),
        "publishedEventId": report["eventId"],
        "listenYielded": f"ResourceUpdated({RETAINED})",
        "wireMethods": wire.methods(),
    }


async def against_fixture(url: str) -> dict[str, Any]:
    """The fixture: a tools list change on a listen stream."""
    wire = Wire()
    async with wire.client() as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, client_info=CLIENT_INFO, read_timeout_seconds=REQUEST_TIMEOUT_S) as client:
            check(client.protocol_version == MODERN, f"fixture negotiated {client.protocol_version!r}")
            async with client.listen(tools_list_changed=True) as subscription:
                check(subscription.honored.tools_list_changed is True, f"listen honoured {subscription.honored}")
                announced = await client.call_tool("announce_tools_changed", {})
                check(not announced.is_error, f"announce_tools_changed: {announced}")
                change = await next_change(subscription, "tools list change")
            check(isinstance(change, ToolsListChanged), f"listen yielded {change!r}")
    wire.check_modern("fixture")
    return {"listenYielded": type(change).__name__, "wireMethods": wire.methods()}


def unwrap(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


async def main_async(serve_url: str, fixture_url: str) -> dict[str, Any]:
    with anyio.fail_after(OVERALL_TIMEOUT_S):
        serve = await against_serve(serve_url)
        fixture = await against_fixture(fixture_url)
    return {"ok": True, "sdk": "mcp", "serve": serve, "fixture": fixture}


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    try:
        summary = anyio.run(main_async, sys.argv[1], sys.argv[2])
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
