#!/usr/bin/env node
// Interop at MCP 2026-07-28: the official MCP TypeScript client (v2), pinned to that revision.
//
// Usage: node client.mjs SERVE_URL FIXTURE_URL
//   SERVE_URL is the MCP endpoint of `mcpbus serve` (http://127.0.0.1:PORT/mcp), configured as
//   crates/mcpbus-cli/tests/fixtures/confirm.toml (the publish and whoami tools, its topics, and
//   urgent events published only once the user confirmed); FIXTURE_URL the endpoint of the
//   test's fixture server (crates/mcpbus-cli/tests/interop_modern.rs), which has the one thing
//   `mcpbus serve` cannot do: announce a tool list change (`announce_tools_changed`).
//
// Needs `npm ci` in this directory (@modelcontextprotocol/client, pinned in package.json and
// package-lock.json); `bash scripts/test.sh` does it.
//
// `Client` with `versionNegotiation: { mode: { pin: '2026-07-28' } }` (the default is the
// handshake era) and `StreamableHTTPClientTransport`. Steps, each checked:
//
//   mcpbus serve: the negotiated revision and the server's name; the events capability under
//   `getServerCapabilities().experimental["mcpbus/events"]` (the SDK strips the top-level
//   `events` it does not know); listTools; callTool whoami; `client.listen({
//   resourceSubscriptions: ['mcpbus://retained'] })`, then callTool publish of an urgent event on
//   build/status, which the server confirms with the user first: it answers `input_required`,
//   the SDK calls the handler registered with `setRequestHandler('elicitation/create')` and
//   retries with `inputResponses` and the sealed `requestState`; the event published, the
//   handler registered with `setNotificationHandler('notifications/resources/updated')` must run
//   for mcpbus://retained; listResources; readResource mcpbus://retained (holds the event) and
//   mcpbus://topics.
//   The fixture: `client.listen({ toolsListChanged: true })`, then callTool
//   announce_tools_changed, and the handler registered with
//   `setNotificationHandler('notifications/tools/list_changed')` must run.
//
// What went on the wire is recorded by the `fetch` given to the transport (request headers and
// bodies, response headers): no `initialize`, no `Mcp-Session-Id`, every POST with
// `MCP-Protocol-Version: 2026-07-28`, and the MRTR retry's `inputResponses`/`requestState`.
//
// Prints one JSON summary line on success; on any mismatch prints "interop FAILED: ..." to stderr
// and exits 1 (2 for bad usage, 3 when the client is not installed).

const OVERALL_TIMEOUT_MS = 90_000;
const CHANGE_TIMEOUT_MS = 15_000;
const MODERN = '2026-07-28';
const RETAINED = 'mcpbus://retained';

class Mismatch extends Error {}

function check(condition, message) {
    if (!condition) throw new Mismatch(message);
}

let Client, StreamableHTTPClientTransport;
try {
    ({ Client, StreamableHTTPClientTransport } = await import('@modelcontextprotocol/client'));
} catch (e) {
    console.error(`interop FAILED: cannot import @modelcontextprotocol/client (${e.message}); run npm ci in tests/interop/ts-modern (scripts/test.sh does)`);
    process.exit(3);
}

/** A fetch for the transport that records every exchange's method, MCP headers and body. */
function recordingFetch() {
    const requests = [];
    const sessionIds = [];
    const fetchFn = async (url, init = {}) => {
        const headers = new Headers(init.headers ?? {});
        let body = null;
        if (typeof init.body === 'string') {
            try {
                body = JSON.parse(init.body);
            } catch {
                body = null;
            }
        }
        requests.push({
            method: (init.method ?? 'GET').toUpperCase(),
            mcpMethod: headers.get('mcp-method'),
            version: headers.get('mcp-protocol-version'),
            body,
        });
        const response = await fetch(url, init);
        const sid = response.headers.get('mcp-session-id');
        if (sid) sessionIds.push(sid);
        return response;
    };
    const methods = () => requests.map(r => (r.body && !Array.isArray(r.body) ? r.body.method ?? null : null));
    const checkModern = what => {
        const seen = methods();
        check(seen[0] === 'server/discover', `${what}: first request ${JSON.stringify(seen.slice(0, 1))}, not server/discover`);
        check(!seen.includes('initialize'), `${what}: the client sent initialize: ${JSON.stringify(seen)}`);
        check(sessionIds.length === 0, `${what}: the server handed out Mcp-Session-Id ${sessionIds}`);
        const wrong = requests.filter(r => r.method === 'POST' && r.version !== MODERN).map(r => [r.mcpMethod, r.version]);
        check(wrong.length === 0, `${what}: POSTs without MCP-Protocol-Version ${MODERN}: ${JSON.stringify(wrong)}`);
    };
    return { fetchFn, requests, methods, checkModern };
}

function within(ms, promise, what) {
    let timer;
    return Promise.race([
        promise,
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Mismatch(`${what}: nothing within ${ms} ms`)), ms))),
    ]).finally(() => clearTimeout(timer));
}

function sortKeys(v) {
    if (Array.isArray(v)) return v.map(sortKeys);
    if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map(k => [k, sortKeys(v[k])]));
    return v;
}

function deepEqual(a, b) {
    return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}

function structured(result, tool) {
    check(!result.isError, `callTool ${tool} returned isError: ${JSON.stringify(result)}`);
    if (result.structuredContent) return result.structuredContent;
    const text = result.content?.find(c => c.type === 'text')?.text;
    check(typeof text === 'string', `callTool ${tool}: no structuredContent and no text content`);
    return JSON.parse(text);
}

function resourceJson(result, uri) {
    check(result.contents?.length === 1 && typeof result.contents[0].text === 'string', `readResource ${uri}: ${JSON.stringify(result)}`);
    return JSON.parse(result.contents[0].text);
}

function newClient(capabilities = {}) {
    return new Client(
        { name: 'mcpbus-interop-ts-modern', version: '1' },
        { capabilities, versionNegotiation: { mode: { pin: MODERN } } },
    );
}

/** A promise of the next notification `method` the client's handler gets. */
function nextNotification(client, method) {
    let resolve;
    const promise = new Promise(r => (resolve = r));
    client.setNotificationHandler(method, notification => resolve(notification));
    return promise;
}

/** The params of the retry of `tool`, checked: the first call went out bare, the retry with one
 * answer in `inputResponses` and the sealed `requestState`. */
function mrtrRetry(wire, tool) {
    const sent = wire.requests
        .map(r => r.body)
        .filter(b => b?.method === 'tools/call' && b.params?.name === tool)
        .map(b => b.params);
    check(sent.length === 2, `${tool} went out ${sent.length} times (expected: the call and its retry)`);
    const [first, retry] = sent;
    check(!('requestState' in first) && !('inputResponses' in first), `first call: ${JSON.stringify(first)}`);
    check(Object.keys(retry.inputResponses ?? {}).length === 1, `the retry's inputResponses: ${JSON.stringify(retry)}`);
    check(typeof retry.requestState === 'string' && retry.requestState, `the retry has no requestState: ${JSON.stringify(retry)}`);
    return retry;
}

/** An urgent publish, confirmed by the elicitation handler, heard on a listen stream of
 * mcpbus://retained. The publish's report and what was published. */
async function publishConfirmed(client, asked) {
    const body = { topic: 'build/status', payload: { status: 'red', via: 'ts-modern' }, priority: 'urgent' };
    const updated = nextNotification(client, 'notifications/resources/updated');
    const subscription = await client.listen({ resourceSubscriptions: [RETAINED] });
    let report, update;
    try {
        const honored = subscription.honoredFilter.resourceSubscriptions;
        check(deepEqual(honored, [RETAINED]), `listen honoured ${JSON.stringify(subscription.honoredFilter)}`);
        report = structured(await client.callTool({ name: 'publish', arguments: body }), 'publish');
        update = await within(CHANGE_TIMEOUT_MS, updated, `the update of ${RETAINED} on the listen stream`);
    } finally {
        await subscription.close();
    }
    check(update?.params?.uri === RETAINED, `resources/updated handler got ${JSON.stringify(update)}`);
    check(asked.length === 1, `the elicitation handler ran ${asked.length} times: ${JSON.stringify(asked)}`);
    check(asked[0].message.includes('urgent') && asked[0].message.includes('build/status'), `elicitation: ${JSON.stringify(asked)}`);
    check('publish' in (asked[0].schema?.properties ?? {}), `elicitation schema: ${JSON.stringify(asked)}`);
    check(typeof report.eventId === 'string' && report.retained === true, `publish: ${JSON.stringify(report)}`);
    return { report, body };
}

/** The product server: discover, tools, a confirmed publish, resources, listen. */
async function againstServe(url) {
    const wire = recordingFetch();
    const client = newClient({ elicitation: { form: {} } });
    const asked = [];
    client.setRequestHandler('elicitation/create', async request => {
        asked.push({ message: request.params.message, schema: request.params.requestedSchema });
        return { action: 'accept', content: { publish: true } };
    });
    await client.connect(new StreamableHTTPClientTransport(new URL(url), { fetch: wire.fetchFn }));
    try {
        check(client.getNegotiatedProtocolVersion() === MODERN, `negotiated ${client.getNegotiatedProtocolVersion()}`);
        const info = client.getServerVersion();
        check(info?.name === 'mcpbus', `server info: ${JSON.stringify(info)}`);
        const caps = client.getServerCapabilities() ?? {};
        const events = caps.experimental?.['mcpbus/events'];
        check(events && Array.isArray(events.topics), `capabilities.experimental['mcpbus/events'] missing: ${JSON.stringify(caps)}`);
        const patterns = events.topics.map(t => t.pattern).sort();
        check(patterns.includes('build/status'), `experimental events topics: ${patterns}`);

        const tools = (await client.listTools()).tools.map(t => t.name).sort();
        check(['publish', 'whoami'].every(t => tools.includes(t)), `listTools: ${tools}`);
        const who = structured(await client.callTool({ name: 'whoami', arguments: {} }), 'whoami');
        check(typeof who.agentId === 'string' && who.agentId, `whoami: ${JSON.stringify(who)}`);
        const { report, body } = await publishConfirmed(client, asked);

        const uris = (await client.listResources()).resources.map(r => r.uri).sort();
        check([RETAINED, 'mcpbus://topics'].every(u => uris.includes(u)), `listResources: ${uris}`);
        const retained = resourceJson(await client.readResource({ uri: RETAINED }), RETAINED);
        const held = (retained.retained ?? []).filter(e => e.eventId === report.eventId);
        check(held.length === 1 && deepEqual(held[0].payload, body.payload), `${RETAINED}: ${JSON.stringify(retained)}`);
        const topics = resourceJson(await client.readResource({ uri: 'mcpbus://topics' }), 'mcpbus://topics');
        check((topics.topics ?? []).some(t => t.pattern === 'build/status'), `mcpbus://topics: ${JSON.stringify(topics)}`);
        wire.checkModern('mcpbus serve');
        const retry = mrtrRetry(wire, 'publish');
        const answer = Object.values(retry.inputResponses)[0];
        check(answer?.action === 'accept' && deepEqual(answer?.content, { publish: true }), `retry: ${JSON.stringify(retry)}`);
        return {
            protocolVersion: client.getNegotiatedProtocolVersion(),
            tools,
            resources: uris,
            experimentalEventsTopics: patterns,
            elicitation: asked[0].message,
            inputResponseKeys: Object.keys(retry.inputResponses).sort(),
            publishedEventId: report.eventId,
            listenYielded: `ResourceUpdated(${RETAINED})`,
            wireMethods: wire.methods(),
        };
    } finally {
        await client.close();
    }
}

/** The fixture: a tools list change on a listen stream. */
async function againstFixture(url) {
    const wire = recordingFetch();
    const client = newClient();
    const changed = nextNotification(client, 'notifications/tools/list_changed');
    await client.connect(new StreamableHTTPClientTransport(new URL(url), { fetch: wire.fetchFn }));
    try {
        check(client.getNegotiatedProtocolVersion() === MODERN, `fixture negotiated ${client.getNegotiatedProtocolVersion()}`);
        const subscription = await client.listen({ toolsListChanged: true });
        let notification;
        try {
            check(subscription.honoredFilter.toolsListChanged === true, `listen honoured ${JSON.stringify(subscription.honoredFilter)}`);
            const announced = await client.callTool({ name: 'announce_tools_changed', arguments: {} });
            check(!announced.isError, `announce_tools_changed: ${JSON.stringify(announced)}`);
            notification = await within(CHANGE_TIMEOUT_MS, changed, 'the tools list change on the listen stream');
        } finally {
            await subscription.close();
        }
        check(notification?.method === 'notifications/tools/list_changed', `handler got ${JSON.stringify(notification)}`);
        wire.checkModern('fixture');
        return { listenYielded: 'ToolsListChanged', wireMethods: wire.methods() };
    } finally {
        await client.close();
    }
}

const [serveUrl, fixtureUrl] = process.argv.slice(2);
if (!serveUrl || !fixtureUrl || process.argv.length !== 4) {
    console.error('Usage: node client.mjs SERVE_URL FIXTURE_URL');
    process.exit(2);
}
const overall = setTimeout(() => {
    console.error(`interop FAILED (timeout): no result within ${OVERALL_TIMEOUT_MS} ms`);
    process.exit(1);
}, OVERALL_TIMEOUT_MS);
try {
    const serve = await againstServe(serveUrl);
    const fixture = await againstFixture(fixtureUrl);
    console.log(JSON.stringify(sortKeys({ ok: true, sdk: '@modelcontextprotocol/client', serve, fixture })));
    clearTimeout(overall);
    process.exit(0);
} catch (e) {
    const kind = e instanceof Mismatch ? 'mismatch' : e?.constructor?.name ?? 'error';
    console.error(`interop FAILED (${kind}): ${e?.stack ?? e}`);
    process.exit(1);
}
