#!/usr/bin/env python3
"""Interop at MCP 2026-07-28: the official MCP Python SDK 2.x client, in its default mode.

Usage: python_modern_client.py SERVE_URL FIXTURE_URL
  SERVE_URL is the MCP endpoint of `mcpbus serve` (http://127.0.0.1:PORT/mcp), configured as
  crates/mcpbus-cli/tests/fixtures/http.toml (the publish and whoami tools, its topics);
  FIXTURE_URL the endpoint of the test's fixture server (crates/mcpbus-cli/tests/
  interop_modern.rs), which has what `mcpbus serve` does not offer: a tool that asks the user
  (`confirm_deploy`) and one that announces a tool list change (`announce_tools_changed`).

Needs the `mcp` package pinned in tests/interop/requirements-mcp2.txt (2.3.x: `mcp.Client`);
`bash scripts/test.sh` installs it in .tools/py-mcp2.

`Client(...)` is used as an application would use it, in its default `mode="auto"`: it probes
`server/discover` and must settle on 2026-07-28 (never `initialize`). Steps, each checked:

  mcpbus serve: the negotiated revision and the server's name; the events capability under
  `experimental["mcpbus/events"]` (the SDK drops the top-level `events` it does not know);
  list_tools; call_tool publish (an event on build/status) and whoami; list_resources;
  read_resource mcpbus://retained (holds the event just published) and mcpbus://topics.
  The fixture: call_tool confirm_deploy, answered through the SDK's elicitation callback (the
  server answers `input_required`, the SDK calls the callback and retries with
  `inputResponses` and the sealed `requestState`); `Client.listen(tools_list_changed=True)`,
  then call_tool announce_tools_changed, and the listen stream must yield ToolsListChanged.

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
    from mcp.client.subscriptions import ToolsListChanged
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


async def against_serve(url: str) -> dict[str, Any]:
    """The product server: discover, tools, resources, the events capability."""
    wire = Wire()
    async with wire.client() as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, client_info=CLIENT_INFO, read_timeout_seconds=REQUEST_TIMEOUT_S) as client:
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
            body = {"topic": "build/status", "payload": {"status": "green", "via": "python-modern"}, "priority": "high"}
            report = structured(await client.call_tool("publish", body), "publish")
            check(isinstance(report.get("eventId"), str) and report.get("retained") is True, f"publish: {report}")
            who = structured(await client.call_tool("whoami", {}), "whoami")
            check(isinstance(who.get("agentId"), str) and who["agentId"], f"whoami: {who}")

            uris = sorted(str(r.uri) for r in (await client.list_resources()).resources)
            check({"mcpbus://retained", "mcpbus://topics"} <= set(uris), f"resources/list: {uris}")
            retained = resource_json(await client.read_resource("mcpbus://retained"), "mcpbus://retained")
            held = [e for e in retained.get("retained", []) if e.get("eventId") == report["eventId"]]
            check(len(held) == 1 and held[0].get("payload") == body["payload"], f"mcpbus://retained: {retained}")
            topics = resource_json(await client.read_resource("mcpbus://topics"), "mcpbus://topics")
            check(
                any(t.get("pattern") == "build/status" for t in topics.get("topics", [])),
                f"mcpbus://topics: {topics}",
            )
    wire.check_modern("mcpbus serve")
    return {
        "protocolVersion": MODERN,
        "tools": tools,
        "resources": uris,
        "experimentalEventsTopics": patterns,
        "publishedEventId": report["eventId"],
        "wireMethods": wire.methods(),
    }


async def against_fixture(url: str) -> dict[str, Any]:
    """The fixture: an elicitation through input_required, a tools list change on listen."""
    wire = Wire()
    asked: list[dict[str, Any]] = []

    async def elicitation(_context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        check(isinstance(params, types.ElicitRequestFormParams), f"elicitation params: {params!r}")
        asked.append({"message": params.message, "schema": dict(params.requested_schema)})
        return types.ElicitResult(action="accept", content={"confirm": True, "note": "ship it"})

    async with wire.client() as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(
            transport,
            client_info=CLIENT_INFO,
            read_timeout_seconds=REQUEST_TIMEOUT_S,
            elicitation_callback=elicitation,
        ) as client:
            check(client.protocol_version == MODERN, f"fixture negotiated {client.protocol_version!r}")
            deploy = structured(await client.call_tool("confirm_deploy", {"target": "production"}), "confirm_deploy")
            check(len(asked) == 1, f"the elicitation callback ran {len(asked)} times: {asked}")
            check(asked[0]["message"] == "Deploy to production?", f"elicitation message: {asked}")
            check("confirm" in asked[0]["schema"].get("properties", {}), f"elicitation schema: {asked}")
            expected = {"target": "production", "action": "accept", "content": {"confirm": True, "note": "ship it"}}
            check(deploy == expected, f"confirm_deploy answered {deploy}, expected {expected}")

            async with client.listen(tools_list_changed=True) as subscription:
                check(subscription.honored.tools_list_changed is True, f"listen honoured {subscription.honored}")
                announced = await client.call_tool("announce_tools_changed", {})
                check(not announced.is_error, f"announce_tools_changed: {announced}")
                try:
                    with anyio.fail_after(CHANGE_TIMEOUT_S):
                        change = await subscription.__anext__()
                except TimeoutError:
                    raise Mismatch(f"no change on the listen stream within {CHANGE_TIMEOUT_S} s") from None
                check(isinstance(change, ToolsListChanged), f"listen yielded {change!r}")
    wire.check_modern("fixture")
    calls = [r["body"] for r in wire.requests if isinstance(r["body"], dict) and r["body"].get("method") == "tools/call"]
    deploys = [c["params"] for c in calls if c.get("params", {}).get("name") == "confirm_deploy"]
    check(len(deploys) == 2, f"confirm_deploy went out {len(deploys)} times (expected: the call and its retry)")
    retry = deploys[1]
    responses = retry.get("inputResponses") or {}
    check(len(responses) == 1, f"the retry's inputResponses: {retry}")
    answer = next(iter(responses.values()))
    check(answer.get("action") == "accept" and answer.get("content", {}).get("confirm") is True, f"retry: {retry}")
    check(isinstance(retry.get("requestState"), str) and retry["requestState"], f"the retry has no requestState: {retry}")
    check("requestState" not in deploys[0] and "inputResponses" not in deploys[0], f"first call: {deploys[0]}")
    return {
        "elicitation": asked[0]["message"],
        "inputResponseKeys": sorted(responses),
        "deploy": deploy,
        "listenYielded": type(change).__name__,
        "wireMethods": wire.methods(),
    }


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
