#!/usr/bin/env python3
"""Interop: the official MCP Python SDK client talks to `mcpbus serve` over Streamable HTTP.

Usage: python_http_client.py BASE_URL PUBLISH_TOKEN
  BASE_URL is the server's root (http://127.0.0.1:PORT); the MCP endpoint is BASE_URL/mcp and
  the publish endpoint BASE_URL/publish.

Needs the `mcp` package pinned in tests/interop/requirements.txt (1.30.0:
`mcp.client.streamable_http.streamable_http_client` and `ClientSession`); `bash scripts/test.sh`
installs it in .tools/py.

Steps, each checked: initialize over HTTP (the events capability both at top level and under
`experimental["mcpbus/events"]`); tools/call whoami; a raw `events/subscribe` (the SDK
knows nothing of the events extension; the request goes through the session's generic
send_request) for build/status and this session's own inbox; then two events published
out of band through `POST /publish` (urllib, bearer token), which must reach this client as
`events/emit` notifications on its standalone GET stream, with the eventId, payload, priority,
source and retained flag that /publish reported and was given.

How the event is observed, honestly: mcp 1.30.0's `ClientSession` validates every incoming
notification against its closed `ServerNotification` union. `events/emit` is not in it, so the
session logs "Failed to validate notification" (WARNING, root logger) and drops it *before* any
hook: `message_handler` never sees it. The closest honest observation point is therefore the
SDK transport's read stream (the `SessionMessage`s that `streamable_http_client` parsed from the
SSE streams, before `ClientSession` validates them): this script sits between the transport and
the session, forwards every message unchanged, and records the `events/emit` ones. To show which
HTTP stream carried them, the httpx client given to the SDK has a recording transport that keeps
the raw bytes of every response by request method: the events must appear in the GET stream's
bytes and in no POST response. The summary also reports whether `message_handler` saw the
events and whether the session logged the validation drop, so that an SDK upgrade that starts
surfacing unknown notifications shows up.

Prints one JSON summary line on success; on any mismatch prints "interop FAILED: ..." to stderr
and exits 1 (2 for bad usage, 3 when `mcp` is not importable).
"""

from __future__ import annotations

import json
import logging
import sys
import urllib.error
import urllib.request
from datetime import timedelta
from typing import Any, Literal

try:
    import anyio
    import httpx
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.message import SessionMessage
    from mcp.types import JSONRPCNotification
    from pydantic import BaseModel, ConfigDict
except ImportError as e:  # pragma: no cover - reported to the Rust test
    print(f"interop FAILED: cannot import the MCP Python SDK ({e}); run scripts/test.sh", file=sys.stderr)
    sys.exit(3)

OVERALL_TIMEOUT_S = 60
REQUEST_TIMEOUT = timedelta(seconds=20)
# How long an event may take from POST /publish to this client's GET stream.
DELIVERY_TIMEOUT_S = 15
# How long the SDK may take to open its GET stream after initialize.
GET_STREAM_TIMEOUT_S = 15


class Mismatch(Exception):
    """The server answered, but not what the protocol (or the config) says it should."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Mismatch(message)


class EventsSubscribeParams(BaseModel):
    topics: list[str]


class EventsSubscribeRequest(BaseModel):
    method: Literal["events/subscribe"] = "events/subscribe"
    params: EventsSubscribeParams


class EventsSubscribeResult(BaseModel):
    model_config = ConfigDict(extra="allow")
    subscribed: list[dict[str, Any]]
    rejected: list[dict[str, Any]]
    retained: list[dict[str, Any]]


# --- the raw HTTP side: which response carried what --------------------------------------------


class _TeeStream(httpx.AsyncByteStream):
    """A response body that copies every chunk into `sink` as the SDK reads it."""

    def __init__(self, inner: httpx.AsyncByteStream, sink: bytearray) -> None:
        self._inner = inner
        self._sink = sink

    async def __aiter__(self):  # type: ignore[override]
        async for chunk in self._inner:
            self._sink.extend(chunk)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class RecordingTransport(httpx.AsyncBaseTransport):
    """Wraps httpx's transport: records each response's method, status, type and raw bytes."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.exchanges: list[dict[str, Any]] = []
        self.get_stream_open = anyio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        record = {
            "method": request.method,
            "status": response.status_code,
            "contentType": response.headers.get("content-type", ""),
            "contentEncoding": response.headers.get("content-encoding", ""),
            "body": bytearray(),
        }
        self.exchanges.append(record)
        if (
            request.method == "GET"
            and response.status_code == 200
            and record["contentType"].startswith("text/event-stream")
        ):
            self.get_stream_open.set()
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_TeeStream(response.stream, record["body"]),  # type: ignore[arg-type]
            extensions=response.extensions,
            request=request,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()

    def sse_messages(self, method: str) -> list[tuple[str | None, dict[str, Any]]]:
        """(SSE id, JSON-RPC message) of every SSE event in the responses to `method`."""
        out: list[tuple[str | None, dict[str, Any]]] = []
        for ex in self.exchanges:
            if ex["method"] != method or not ex["contentType"].startswith("text/event-stream"):
                continue
            text = bytes(ex["body"]).decode("utf-8", "replace").replace("\r\n", "\n")
            for block in text.split("\n\n"):
                sse_id, data = None, []
                for line in block.split("\n"):
                    if line.startswith("id:"):
                        sse_id = line[3:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].removeprefix(" "))
                if data and "".join(data):
                    out.append((sse_id, json.loads("\n".join(data))))
        return out

    def json_bodies(self, method: str) -> list[Any]:
        """Every application/json response body to `method` (the server's non-SSE answers)."""
        return [
            json.loads(bytes(ex["body"]))
            for ex in self.exchanges
            if ex["method"] == method and ex["contentType"].startswith("application/json") and ex["body"]
        ]


# --- the SDK side -------------------------------------------------------------------------------


class ValidationDrops(logging.Handler):
    """Counts the session's "Failed to validate notification" warnings about events/emit."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if "Failed to validate notification" in text and "events/emit" in text:
            self.count += 1


def publish(base_url: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST /publish with the bearer token; the server's report, or Mismatch."""
    request = urllib.request.Request(
        f"{base_url}/publish",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    # Loopback only: never through an HTTP proxy from the environment.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    check(status == 200, f"POST /publish {body} answered {status}: {text}")
    return json.loads(text)


def structured(result: Any, tool: str) -> dict[str, Any]:
    check(not result.isError, f"tools/call {tool} returned isError: {result.content}")
    if result.structuredContent is not None:
        return result.structuredContent
    texts = [c.text for c in result.content if getattr(c, "type", None) == "text"]
    check(len(texts) >= 1, f"tools/call {tool}: no structuredContent and no text content")
    return json.loads(texts[0])


async def run(base_url: str, token: str) -> dict[str, Any]:
    recorder = RecordingTransport()
    drops = ValidationDrops()
    logging.getLogger().addHandler(drops)

    # events/emit notifications as the SDK transport delivered them, by eventId.
    emitted: dict[str, dict[str, Any]] = {}
    arrived = {}  # eventId -> anyio.Event
    handler_saw_emit: list[Any] = []

    def arrival(event_id: str) -> anyio.Event:
        return arrived.setdefault(event_id, anyio.Event())

    async def message_handler(message: Any) -> None:
        # Whatever the session passes on; in mcp 1.30.0 events/emit never gets here.
        root = getattr(message, "root", None)
        if getattr(root, "method", None) == "events/emit":
            handler_saw_emit.append(root)

    http_client = httpx.AsyncClient(
        transport=recorder,
        timeout=httpx.Timeout(30, read=300),
        trust_env=False,  # loopback only: no proxy from the environment
    )
    async with http_client:
        async with streamable_http_client(f"{base_url}/mcp", http_client=http_client) as (
            transport_read,
            write,
            get_session_id,
        ):
            session_send, session_read = anyio.create_memory_object_stream[SessionMessage | Exception](0)

            async def forward() -> None:
                # Between the SDK transport and ClientSession: record events/emit, pass all on.
                async with session_send:
                    async for item in transport_read:
                        if isinstance(item, SessionMessage):
                            root = item.message.root
                            if isinstance(root, JSONRPCNotification) and root.method == "events/emit":
                                params = root.params or {}
                                event_id = params.get("eventId")
                                if isinstance(event_id, str):
                                    emitted[event_id] = params
                                    arrival(event_id).set()
                        await session_send.send(item)

            async with anyio.create_task_group() as tg:
                tg.start_soon(forward)
                async with ClientSession(
                    session_read,
                    write,
                    read_timeout_seconds=REQUEST_TIMEOUT,
                    message_handler=message_handler,
                ) as session:
                    # 1. initialize
                    init = await session.initialize()
                    check(init.serverInfo.name == "mcpbus", f"serverInfo.name: {init.serverInfo.name!r}")
                    caps = init.capabilities.model_dump(by_alias=True)
                    check(isinstance(caps.get("events"), dict), f"capabilities.events missing: {caps}")
                    # The same capability under experimental, the member every SDK keeps.
                    experimental = init.capabilities.experimental or {}
                    check(
                        experimental.get("mcpbus/events") == caps["events"],
                        f"capabilities.experimental['mcpbus/events'] is not capabilities.events: {caps}",
                    )
                    http_session_id = get_session_id()
                    check(bool(http_session_id), "no Mcp-Session-Id after initialize")

                    # 2. tools/call whoami
                    who = structured(await session.call_tool("whoami", {}), "whoami")
                    agent_id = who.get("agentId")
                    check(isinstance(agent_id, str) and agent_id, f"whoami agentId: {who}")
                    check(
                        who.get("sessionId") == http_session_id,
                        f"whoami sessionId {who.get('sessionId')!r} != Mcp-Session-Id {http_session_id!r}",
                    )

                    # 3. raw events/subscribe
                    inbox = f"agents/{agent_id}/inbox"
                    sub = await session.send_request(
                        EventsSubscribeRequest(params=EventsSubscribeParams(topics=["build/status", inbox])),
                        EventsSubscribeResult,
                    )
                    subscribed = sorted(s.get("pattern") for s in sub.subscribed)
                    check(
                        subscribed == sorted(["build/status", inbox]) and sub.rejected == [],
                        f"subscribed: {sub.subscribed}, rejected: {sub.rejected}",
                    )

                    # 4. the SDK opens its GET stream after notifications/initialized; wait for it
                    # so that the publish below cannot race it.
                    with anyio.fail_after(GET_STREAM_TIMEOUT_S):
                        await recorder.get_stream_open.wait()

                    # 5. publish out of band, through POST /publish
                    build_body = {
                        "topic": "build/status",
                        "payload": {"status": "green", "build": 7, "via": "python-http"},
                        "priority": "high",
                        "source": "ci",
                    }
                    inbox_body = {
                        "topic": inbox,
                        "payload": {"text": "hello over HTTP", "n": [1, 2, 3]},
                        "eventId": f"py-inbox-{agent_id}",
                    }
                    build_report = await anyio.to_thread.run_sync(publish, base_url, token, build_body)
                    inbox_report = await anyio.to_thread.run_sync(publish, base_url, token, inbox_body)
                    check(
                        build_report.get("delivered") == 1 and build_report.get("retained") is True,
                        f"/publish build/status report: {build_report}",
                    )
                    check(
                        inbox_report.get("delivered") == 1
                        and inbox_report.get("retained") is False
                        and inbox_report.get("eventId") == inbox_body["eventId"],
                        f"/publish inbox report: {inbox_report}",
                    )

                    # 6. both arrive as events/emit
                    expected = [(build_report, build_body), (inbox_report, inbox_body)]
                    for report, body in expected:
                        event_id = report["eventId"]
                        try:
                            with anyio.fail_after(DELIVERY_TIMEOUT_S):
                                await arrival(event_id).wait()
                        except TimeoutError:
                            raise Mismatch(
                                f"no events/emit {event_id} ({body['topic']}) within {DELIVERY_TIMEOUT_S} s; "
                                f"received: {list(emitted)}"
                            ) from None
                        got = emitted[event_id]
                        check(got.get("topic") == body["topic"], f"topic of {event_id}: {got}")
                        check(got.get("payload") == body["payload"], f"payload of {event_id}: {got}")
                        check(got.get("retained") is report["retained"], f"retained of {event_id}: {got}")
                        check(got.get("priority", "normal") == body.get("priority", "normal"), f"priority: {got}")
                        check(got.get("source") == body.get("source"), f"source of {event_id}: {got}")

                    # A request after the events: the session is still usable (nothing wedged).
                    again = structured(await session.call_tool("whoami", {}), "whoami")
                    check(again.get("agentId") == agent_id, f"second whoami: {again}")

                tg.cancel_scope.cancel()

    logging.getLogger().removeHandler(drops)

    # 7. which HTTP response carried the events: the GET stream, with SSE ids, and no POST.
    ids = {build_report["eventId"], inbox_report["eventId"]}
    on_get = {
        m["params"]["eventId"]: sse_id
        for sse_id, m in recorder.sse_messages("GET")
        if m.get("method") == "events/emit"
    }
    check(ids <= set(on_get), f"events/emit on the GET stream: {sorted(on_get)}; expected {sorted(ids)}")
    check(all(on_get[i] for i in ids), f"events/emit without an SSE id on the GET stream: {on_get}")
    on_post = [m for _, m in recorder.sse_messages("POST") if m.get("method") == "events/emit"]
    for body in recorder.json_bodies("POST"):
        on_post += [m for m in (body if isinstance(body, list) else [body]) if m.get("method") == "events/emit"]
    check(on_post == [], f"events/emit travelled on POST responses: {on_post}")
    gets = [(ex["status"], ex["contentType"]) for ex in recorder.exchanges if ex["method"] == "GET"]

    return {
        "ok": True,
        "sdk": "mcp",
        "protocolVersion": init.protocolVersion,
        "sessionId": http_session_id,
        "subscribed": subscribed,
        "published": sorted(ids),
        "receivedOnGetStream": sorted(set(on_get) & ids),
        "sseIds": {i: on_get[i] for i in sorted(ids)},
        "getRequests": gets,
        "observedVia": "transport read stream (before ClientSession validation)",
        "messageHandlerSawEmit": len(handler_saw_emit),
        "sessionValidationDrops": drops.count,
    }


def unwrap(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


async def main_async(base_url: str, token: str) -> dict[str, Any]:
    with anyio.fail_after(OVERALL_TIMEOUT_S):
        return await run(base_url, token)


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    base_url, token = sys.argv[1].rstrip("/"), sys.argv[2]
    try:
        summary = anyio.run(main_async, base_url, token)
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
