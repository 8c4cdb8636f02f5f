#!/usr/bin/env python3
"""Regression: the official MCP Python SDK 2.x reads mcpbus's HTTP error bodies.

Usage: python_error_bodies.py SERVE_URL
  SERVE_URL is the MCP endpoint of `mcpbus serve` (http://127.0.0.1:PORT/mcp) with the default
  body limit (4 MiB) and the tools of crates/mcpbus-cli/tests/fixtures/http.toml.

Needs the `mcp` package pinned in tests/interop/requirements-mcp2.txt (2.3.x); `bash
scripts/test.sh` installs it in .tools/py-mcp2.

mcp 2.x answers a request whose POST got a non-2xx status with the JSON-RPC error of the body
only when that body parses as an error response, which for this SDK needs an `id` member; for
any other body it makes up "-32603 Server returned an error response" (or "Session
terminated" for a 404), and the server's reason is lost. Each case below must raise the
server's own code and message through the SDK's public API (`mcp.MCPError`):

  - 413, refused before the body is read (`"id": "unknown"`): a 2026-07-28 call_tool whose
    argument is over the 4 MiB limit;
  - 406, refused before the body is read: a handshake-era call whose `Accept` header is spoiled
    on the way out (an httpx2 request hook; the SDK itself always sends the right one);
  - 404 for an unknown session, refused after the body was parsed (the request's own id): a
    handshake-era call after the session was deleted out of band.

After each error the client must still work (a whoami call succeeds), except after the 404,
where the session is gone by design.

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
    from mcp.shared.exceptions import MCPError
except ImportError as e:  # pragma: no cover - reported to the Rust test
    print(f"interop FAILED: cannot import the MCP Python SDK 2.x ({e}); run scripts/test.sh", file=sys.stderr)
    sys.exit(3)

OVERALL_TIMEOUT_S = 90
REQUEST_TIMEOUT_S = 20
BODY_LIMIT = 4 * 1024 * 1024
INVALID_REQUEST = -32600
CLIENT_INFO = types.Implementation(name="mcpbus-interop-python-errors", version="1")


class Mismatch(Exception):
    """The SDK did not surface the server's error as the server wrote it."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Mismatch(message)


class Hooks:
    """httpx2 hooks: remembers the session id, and can spoil the next POST's Accept header."""

    def __init__(self) -> None:
        self.session_id: str | None = None
        self.spoil_accept = False
        self.statuses: list[int] = []

    async def on_request(self, request: httpx2.Request) -> None:
        if self.spoil_accept and request.method == "POST":
            self.spoil_accept = False
            request.headers["accept"] = "application/json"

    async def on_response(self, response: httpx2.Response) -> None:
        self.statuses.append(response.status_code)
        sid = response.headers.get("mcp-session-id")
        if sid:
            self.session_id = sid

    def client(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(
            timeout=httpx2.Timeout(30, read=300),
            trust_env=False,  # loopback only: no proxy from the environment
            event_hooks={"request": [self.on_request], "response": [self.on_response]},
        )


async def expect_error(call: Any, status: int, hooks: Hooks, code: int, contains: str, what: str) -> dict[str, Any]:
    """Runs `call`, which must raise the server's error (`code`, a message with `contains`)."""
    try:
        result = await call
    except MCPError as e:
        check(
            e.code == code and contains in e.message,
            f"{what}: the SDK raised {e.code} {e.message!r}; the server said {code} with {contains!r}",
        )
        check(status in hooks.statuses, f"{what}: no HTTP {status} went by: {hooks.statuses}")
        return {"code": e.code, "message": e.message, "status": status}
    raise Mismatch(f"{what}: expected an error, got {result}")


async def whoami(client: Client, what: str) -> str:
    result = await client.call_tool("whoami", {})
    check(not result.is_error and result.structured_content is not None, f"whoami after {what}: {result}")
    return result.structured_content["agentId"]


async def too_large(url: str) -> dict[str, Any]:
    hooks = Hooks()
    async with hooks.client() as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, client_info=CLIENT_INFO, read_timeout_seconds=REQUEST_TIMEOUT_S) as client:
            check(client.protocol_version == "2026-07-28", f"negotiated {client.protocol_version!r}")
            big = {"topic": "build/status", "payload": "x" * (BODY_LIMIT + 1)}
            seen = await expect_error(
                client.call_tool("publish", big), 413, hooks, INVALID_REQUEST, "exceeds the limit", "413"
            )
            await whoami(client, "the 413")
    return seen


async def handshake_era(url: str) -> dict[str, dict[str, Any]]:
    hooks = Hooks()
    seen: dict[str, dict[str, Any]] = {}
    async with hooks.client() as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(
            transport, mode="legacy", client_info=CLIENT_INFO, read_timeout_seconds=REQUEST_TIMEOUT_S
        ) as client:
            check(client.protocol_version != "2026-07-28", f"legacy mode negotiated {client.protocol_version!r}")
            check(hooks.session_id is not None, "no Mcp-Session-Id after initialize")
            await whoami(client, "initialize")

            hooks.spoil_accept = True
            seen["406"] = await expect_error(
                client.call_tool("whoami", {}), 406, hooks, INVALID_REQUEST, "Accept must list", "406"
            )
            await whoami(client, "the 406")

            # End the session behind the SDK's back, as a server restart would.
            headers = {"mcp-session-id": hooks.session_id, "mcp-protocol-version": client.protocol_version}
            async with httpx2.AsyncClient(trust_env=False) as raw:
                deleted = await raw.delete(url, headers=headers)
            check(deleted.status_code == 200, f"DELETE of the session: {deleted.status_code} {deleted.text}")
            seen["404"] = await expect_error(
                client.call_tool("whoami", {}), 404, hooks, INVALID_REQUEST, "Session not found", "404"
            )
    return seen


def unwrap(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


async def main_async(url: str) -> dict[str, Any]:
    with anyio.fail_after(OVERALL_TIMEOUT_S):
        seen = {"413": await too_large(url)}
        seen.update(await handshake_era(url))
    return {"ok": True, "sdk": "mcp", "errors": seen}


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    try:
        summary = anyio.run(main_async, sys.argv[1])
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
