#!/usr/bin/env node
// Interop: the official MCP TypeScript SDK 1.x client (the handshake era) subscribes to a topic
// resource of mcpbus's resource bridge and hears every change of the topic's retained value.
//
// Usage: node resources.mjs BASE_URL PUBLISH_TOKEN
//   BASE_URL is the root of `mcpbus serve` (crates/mcpbus-cli/tests/fixtures/http.toml): the MCP
//   endpoint is BASE_URL/mcp, the publish endpoint BASE_URL/publish.
//
// Needs `npm ci` in this directory (`bash scripts/test.sh` does it). Nothing here knows the
// events extension: only `client.subscribeResource`, `client.readResource` and a handler for the
// SDK's own ResourceUpdatedNotificationSchema. Steps, each checked:
//   - the template mcpbus://retained/{+topic} is listed; reading mcpbus://retained/build/status
//     before anything was published is -32002 (resource not found);
//   - subscribeResource({uri: mcpbus://retained/build/status}), then, once the SDK's GET stream
//     is open (where the handshake era's unsolicited notifications travel), POST /publish of a
//     retained event on deploy/status, then two on build/status;
//   - the handler gets notifications/resources/updated for the URI once per build/status publish
//     (the deploy/status publish, sent first, notifies nothing for it), and reading the resource
//     after each gives that publish's eventId and payload.
//
// Prints one JSON summary line on success; on any mismatch prints "interop FAILED: ..." to stderr
// and exits 1 (2 for bad usage, 3 when the SDK is not installed).

const OVERALL_TIMEOUT_MS = 60_000;
const DELIVERY_TIMEOUT_MS = 15_000;
const URI = 'mcpbus://retained/build/status';

class Mismatch extends Error {}

function check(condition, message) {
    if (!condition) throw new Mismatch(message);
}

let Client, StreamableHTTPClientTransport, ResourceUpdatedNotificationSchema;
try {
    ({ Client } = await import('@modelcontextprotocol/sdk/client/index.js'));
    ({ StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js'));
    ({ ResourceUpdatedNotificationSchema } = await import('@modelcontextprotocol/sdk/types.js'));
} catch (e) {
    console.error(`interop FAILED: cannot import the MCP TypeScript SDK (${e.message}); run npm ci in tests/interop/ts (scripts/test.sh does)`);
    process.exit(3);
}

function within(ms, promise, what) {
    let timer;
    return Promise.race([
        promise,
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Mismatch(`${what}: nothing within ${ms} ms`)), ms))),
    ]).finally(() => clearTimeout(timer));
}

/** A fetch for the transport that resolves `getStreamOpen` once the SDK's GET stream is open. */
function watchingFetch() {
    let opened;
    const getStreamOpen = new Promise(resolve => (opened = resolve));
    const fetchFn = async (url, init = {}) => {
        const response = await fetch(url, init);
        const isSse = (response.headers.get('content-type') ?? '').startsWith('text/event-stream');
        if ((init.method ?? 'GET').toUpperCase() === 'GET' && response.status === 200 && isSse) opened();
        return response;
    };
    return { fetchFn, getStreamOpen };
}

async function publish(baseUrl, token, body) {
    const response = await fetch(`${baseUrl}/publish`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    check(response.status === 200, `POST /publish ${JSON.stringify(body)} answered ${response.status}: ${text}`);
    return JSON.parse(text);
}

async function readValue(client) {
    const result = await client.readResource({ uri: URI });
    check(result.contents?.length === 1 && result.contents[0].uri === URI, `readResource ${URI}: ${JSON.stringify(result)}`);
    return JSON.parse(result.contents[0].text);
}

async function run(baseUrl, token) {
    const watch = watchingFetch();
    const transport = new StreamableHTTPClientTransport(new URL(`${baseUrl}/mcp`), { fetch: watch.fetchFn });
    const client = new Client({ name: 'mcpbus-interop-ts-resources', version: '0.1.0' });
    // Every notifications/resources/updated, in order; `next` resolves on the next one.
    const updates = [];
    let next = () => {};
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, notification => {
        updates.push(notification.params.uri);
        next();
    });
    const nextUpdate = () => new Promise(resolve => (next = resolve));

    await client.connect(transport);
    try {
        check(client.getServerCapabilities()?.resources?.subscribe === true, `resources.subscribe: ${JSON.stringify(client.getServerCapabilities())}`);
        const templates = (await client.listResourceTemplates()).resourceTemplates.map(t => t.uriTemplate);
        check(templates.includes('mcpbus://retained/{+topic}'), `listResourceTemplates: ${templates}`);
        const before = await client.readResource({ uri: URI }).then(
            () => null,
            e => e.code,
        );
        check(before === -32002, `reading ${URI} before any publish: ${before}, not -32002`);

        await client.subscribeResource({ uri: URI });
        await within(DELIVERY_TIMEOUT_MS, watch.getStreamOpen, 'the SDK opening its GET stream');

        const other = await publish(baseUrl, token, { topic: 'deploy/status', payload: { env: 'prod' }, retained: true });
        check(other.retained === true, `/publish deploy/status: ${JSON.stringify(other)}`);
        const seen = [];
        for (const build of [41, 42]) {
            const body = { topic: 'build/status', payload: { status: 'green', build }, retained: true, source: 'ci' };
            const updated = nextUpdate();
            const report = await publish(baseUrl, token, body);
            check(report.retained === true, `/publish build/status: ${JSON.stringify(report)}`);
            await within(DELIVERY_TIMEOUT_MS, updated, `notifications/resources/updated after build ${build}; got ${JSON.stringify(updates)}`);
            const value = await readValue(client);
            check(
                value.eventId === report.eventId && value.topic === 'build/status' && value.payload?.build === build && value.source === 'ci',
                `${URI} after build ${build} (${report.eventId}): ${JSON.stringify(value)}`,
            );
            seen.push(report.eventId);
        }
        // Notifications arrive in order on the one GET stream: had the deploy/status publish
        // notified the URI, that notification would be among these.
        check(JSON.stringify(updates) === JSON.stringify([URI, URI]), `updates: ${JSON.stringify(updates)}`);
        await client.unsubscribeResource({ uri: URI });
        return {
            ok: true,
            sdk: '@modelcontextprotocol/sdk',
            protocolVersion: transport.protocolVersion,
            uri: URI,
            updates,
            readEventIds: seen,
            readBeforePublish: before,
        };
    } finally {
        await transport.terminateSession().catch(() => {});
        await client.close();
    }
}

const [baseUrlArg, token] = process.argv.slice(2);
if (!baseUrlArg || !token || process.argv.length !== 4) {
    console.error('Usage: node resources.mjs BASE_URL PUBLISH_TOKEN');
    process.exit(2);
}
const overall = setTimeout(() => {
    console.error(`interop FAILED (timeout): no result within ${OVERALL_TIMEOUT_MS} ms`);
    process.exit(1);
}, OVERALL_TIMEOUT_MS);
try {
    const summary = await run(baseUrlArg.replace(/\/+$/, ''), token);
    console.log(JSON.stringify(summary));
    clearTimeout(overall);
    process.exit(0);
} catch (e) {
    const kind = e instanceof Mismatch ? 'mismatch' : e?.constructor?.name ?? 'error';
    console.error(`interop FAILED (${kind}): ${e?.stack ?? e}`);
    process.exit(1);
}
