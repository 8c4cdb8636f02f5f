#!/usr/bin/env node
// OAuth interop: the official MCP TypeScript SDK client authorizes itself against `mcpbus serve`.
//
// Usage: node oauth_client.mjs SERVE_URL
//   SERVE_URL is the MCP endpoint of `mcpbus serve` (http://127.0.0.1:PORT/mcp) configured with
//   `[auth.oauth]`: its resource is SERVE_URL, its issuer a loopback `oidc-provider`
//   (tests/auth/provider.mjs), which approves authorization requests by itself.
//
// Needs `npm ci` in this directory (@modelcontextprotocol/sdk, pinned); `bash scripts/test.sh`
// does it.
//
// The SDK's `StreamableHTTPClientTransport` with an `authProvider` (the SDK's `OAuthClientProvider`
// interface, implemented here in memory) does the OAuth work: on the first 401 it reads the
// protected resource metadata and the authorization server's, registers the client (RFC 7591),
// and hands the authorization URL (PKCE, `resource`, the challenged scope) to
// `redirectToAuthorization`, then `connect` rejects with `UnauthorizedError`, as the SDK
// documents. `redirectToAuthorization` plays the browser: it follows the authorization server's
// redirects with fetch (`redirect: 'manual'`, no cookies) until one leads to the redirect URI,
// and keeps the code; the application then calls `transport.finishAuth(code)` (the SDK redeems
// it) and connects again with a new transport. `whoami` must name the account the provider
// logged in (`agent-a`, its default).
//
// Prints one JSON summary line on success; on any mismatch prints "interop FAILED: ..." to stderr
// and exits 1 (2 for bad usage, 3 when the SDK is not installed).

const OVERALL_TIMEOUT_MS = 60_000;
const MAX_REDIRECTS = 10;
// Never requested: the browser stops at it. A loopback URI with a port, as a native client's.
const REDIRECT_URI = 'http://127.0.0.1:9/callback';

class Mismatch extends Error {}

function check(condition, message) {
    if (!condition) throw new Mismatch(message);
}

let Client, StreamableHTTPClientTransport, UnauthorizedError;
try {
    ({ Client } = await import('@modelcontextprotocol/sdk/client/index.js'));
    ({ StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js'));
    ({ UnauthorizedError } = await import('@modelcontextprotocol/sdk/client/auth.js'));
} catch (e) {
    console.error(`interop FAILED: cannot import the MCP TypeScript SDK (${e.message}); run npm ci in tests/interop/ts (scripts/test.sh does)`);
    process.exit(3);
}

/** The user agent: follows the authorization server's redirects up to REDIRECT_URI. */
async function follow(url) {
    for (let i = 0; i < MAX_REDIRECTS; i++) {
        check(new URL(url).hostname === '127.0.0.1', `the flow left loopback: ${url}`);
        const answer = await fetch(url, { redirect: 'manual' });
        const location = answer.headers.get('location');
        check([302, 303].includes(answer.status) && location, `GET ${url}: ${answer.status} ${(await answer.text()).slice(0, 500)}`);
        url = new URL(location, url).href;
        if (url.startsWith(REDIRECT_URI)) return new URL(url);
    }
    throw new Mismatch(`no redirect to ${REDIRECT_URI} after ${MAX_REDIRECTS} redirects`);
}

/** The SDK's OAuthClientProvider, in memory: a fresh client every run. */
class MemoryProvider {
    constructor() {
        this.info = undefined;
        this.saved = undefined;
        this.verifier = undefined;
        this.expectedState = `state-${Math.random().toString(36).slice(2)}`;
        this.authorizationUrls = [];
        this.code = undefined;
    }
    get redirectUrl() {
        return REDIRECT_URI;
    }
    get clientMetadata() {
        return {
            client_name: 'mcpbus interop (TypeScript SDK)',
            redirect_uris: [REDIRECT_URI],
            grant_types: ['authorization_code', 'refresh_token'],
            response_types: ['code'],
            token_endpoint_auth_method: 'none',
        };
    }
    state() {
        return this.expectedState;
    }
    clientInformation() {
        return this.info;
    }
    saveClientInformation(info) {
        this.info = info;
    }
    tokens() {
        return this.saved;
    }
    saveTokens(tokens) {
        this.saved = tokens;
    }
    saveCodeVerifier(verifier) {
        this.verifier = verifier;
    }
    codeVerifier() {
        return this.verifier;
    }
    async redirectToAuthorization(authorizationUrl) {
        this.authorizationUrls.push(authorizationUrl.href);
        const back = await follow(authorizationUrl.href);
        const params = back.searchParams;
        check(params.get('code'), `the authorization server refused: ${back.href}`);
        check(params.get('state') === this.expectedState, `state: ${params.get('state')}`);
        this.code = params.get('code');
    }
}

async function run(url) {
    const provider = new MemoryProvider();
    const client = new Client({ name: 'mcpbus-oauth-interop', version: '1.0.0' });
    let first = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
    let refused;
    try {
        await client.connect(first);
    } catch (e) {
        refused = e;
    }
    check(refused instanceof UnauthorizedError, `the first connect: ${refused}`);
    check(provider.code, 'no authorization code');
    await first.finishAuth(provider.code);
    await first.close().catch(() => {});

    const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
    await client.connect(transport);
    const who = (await client.callTool({ name: 'whoami', arguments: {} })).structuredContent ?? {};
    await client.close();

    check(provider.authorizationUrls.length === 1, `authorization requests: ${provider.authorizationUrls}`);
    const asked = new URL(provider.authorizationUrls[0]).searchParams;
    check(asked.get('resource') === url, `the authorization request's resource: ${asked.get('resource')}`);
    check(asked.get('code_challenge_method') === 'S256', `PKCE: ${asked}`);
    check(provider.info?.client_id, 'the client did not register');
    check(provider.saved?.access_token, 'no token saved');
    check(who.agentId === 'agent-a', `whoami: ${JSON.stringify(who)}`);
    return {
        ok: true,
        agentId: who.agentId,
        sessionId: who.sessionId,
        registeredClient: provider.info.client_id,
        scope: provider.saved.scope,
        resource: asked.get('resource'),
    };
}

const url = process.argv[2];
if (!url || process.argv.length !== 3) {
    console.error('usage: node oauth_client.mjs SERVE_URL');
    process.exit(2);
}
const timer = setTimeout(() => {
    console.error(`interop FAILED: no result within ${OVERALL_TIMEOUT_MS} ms`);
    process.exit(1);
}, OVERALL_TIMEOUT_MS);
try {
    console.log(JSON.stringify(await run(url)));
    clearTimeout(timer);
    process.exit(0);
} catch (e) {
    console.error(`interop FAILED: ${e instanceof Mismatch ? '' : `${e?.name}: `}${e?.message ?? e}`);
    if (!(e instanceof Mismatch)) console.error(e?.stack);
    process.exit(1);
}
