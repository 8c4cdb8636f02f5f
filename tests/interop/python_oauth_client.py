#!/usr/bin/env python3
"""OAuth interop: the official MCP Python SDK 2.x client authorizes itself against `mcpbus serve`.

Usage: python_oauth_client.py SERVE_URL
  SERVE_URL is the MCP endpoint of `mcpbus serve` (http://127.0.0.1:PORT/mcp) configured with
  `[auth.oauth]`: its resource is SERVE_URL, its issuer a loopback `oidc-provider`
  (tests/auth/provider.mjs), which approves authorization requests by itself.

The SDK's own `OAuthClientProvider` does everything an application leaves to it: the first
request gets 401 with `resource_metadata`; it reads the protected resource metadata, then the
authorization server's, registers itself (RFC 7591), builds the authorization request (PKCE,
`resource`, the challenged scope) and hands its URL to the redirect handler. The handler here
plays the browser: it follows the authorization server's redirects with urllib, without a
cookie jar, until one leads to the redirect URI, whose query (code, state, iss) the callback
handler returns. The SDK redeems the code and retries with the token. Then `whoami` must name
the account the provider logged in (`agent-a`, its default).

Prints one JSON summary line on success; on a mismatch prints "interop FAILED: ..." to stderr
and exits 1 (2 for bad usage, 3 when `mcp` 2.x is not importable).
"""

from __future__ import annotations

import json
import traceback
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

try:
    import anyio
    import httpx2
    from mcp import Client
    from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
except ImportError as e:  # pragma: no cover - reported to the Rust test
    print(f"interop FAILED: cannot import the MCP Python SDK 2.x ({e}); run scripts/test.sh", file=sys.stderr)
    sys.exit(3)

OVERALL_TIMEOUT_S = 60
HTTP_TIMEOUT_S = 10
MAX_REDIRECTS = 10
# Never requested: the redirect handler stops at it. A loopback URI with a port, as a native
# client's (RFC 8252 7.3).
REDIRECT_URI = "http://127.0.0.1:9/callback"


class Mismatch(Exception):
    """The flow did not go as the protocol says."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Mismatch(message)


class MemoryStorage:
    """The SDK's TokenStorage, in memory: a fresh client every run."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hands every redirect back to the caller instead of following it."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


class Browser:
    """The user agent: follows the authorization server's redirects up to the redirect URI."""

    def __init__(self) -> None:
        self.opener = urllib.request.build_opener(NoRedirect)
        self.authorization_urls: list[str] = []
        self.result: AuthorizationCodeResult | None = None

    def follow(self, url: str) -> str:
        """The URL of the redirect that leads to REDIRECT_URI."""
        for _ in range(MAX_REDIRECTS):
            check(urllib.parse.urlsplit(url).hostname == "127.0.0.1", f"the flow left loopback: {url}")
            try:
                with self.opener.open(url, timeout=HTTP_TIMEOUT_S) as answer:
                    raise Mismatch(f"GET {url}: {answer.status} without a redirect: {answer.read()[:500]!r}")
            except urllib.error.HTTPError as redirect:
                location = redirect.headers.get("Location")
                check(redirect.code in (302, 303) and location, f"GET {url}: {redirect.code} {redirect.read()[:500]!r}")
            url = urllib.parse.urljoin(url, location)
            if url.startswith(REDIRECT_URI):
                return url
        raise Mismatch(f"no redirect to {REDIRECT_URI} after {MAX_REDIRECTS} redirects")

    async def redirect_handler(self, authorization_url: str) -> None:
        self.authorization_urls.append(authorization_url)
        back = await anyio.to_thread.run_sync(self.follow, authorization_url)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(back).query)
        check("code" in query, f"the authorization server refused: {back}")
        first = lambda name: query.get(name, [None])[0]  # noqa: E731
        self.result = AuthorizationCodeResult(code=first("code"), state=first("state"), iss=first("iss"))

    async def callback_handler(self) -> AuthorizationCodeResult:
        check(self.result is not None, "the callback came before the redirect")
        assert self.result is not None
        return self.result


async def run(url: str) -> dict[str, Any]:
    browser = Browser()
    metadata = OAuthClientMetadata(
        client_name="mcpbus interop (Python SDK 2.x)",
        redirect_uris=[REDIRECT_URI],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )
    storage = MemoryStorage()
    provider = OAuthClientProvider(
        server_url=url,
        client_metadata=metadata,
        storage=storage,
        redirect_handler=browser.redirect_handler,
        callback_handler=browser.callback_handler,
    )
    async with httpx2.AsyncClient(auth=provider, timeout=HTTP_TIMEOUT_S) as http:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            result = await client.call_tool("whoami", {})
            who = result.structured_content or {}
            protocol = client.protocol_version
    check(len(browser.authorization_urls) == 1, f"authorization requests: {browser.authorization_urls}")
    asked = urllib.parse.parse_qs(urllib.parse.urlsplit(browser.authorization_urls[0]).query)
    check(asked.get("resource") == [url], f"the authorization request's resource: {asked.get('resource')}")
    check(asked.get("code_challenge_method") == ["S256"], f"PKCE: {asked}")
    check(storage.client_info is not None, "the client did not register")
    check(storage.tokens is not None, "no token stored")
    check(who.get("agentId") == "agent-a", f"whoami: {who}")
    assert storage.client_info is not None and storage.tokens is not None
    return {
        "ok": True,
        "protocolVersion": protocol,
        "agentId": who.get("agentId"),
        "registeredClient": storage.client_info.client_id,
        "scope": storage.tokens.scope,
        "resource": asked["resource"][0],
    }


async def bounded(url: str) -> dict[str, Any]:
    with anyio.fail_after(OVERALL_TIMEOUT_S):
        return await run(url)


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        summary = anyio.run(bounded, sys.argv[1])
    except Exception as e:  # every failure is reported to the Rust test
        traceback.print_exc()
        print(f"interop FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
