#!/usr/bin/env node
// Interop at MCP 2026-07-28: the official MCP TypeScript client (v2), pinned to that revision,
// subscribes to a topic resource of mcpbus's resource bridge on a `subscriptions/listen` stream
// and hears every change of the topic's retained value.
//
// Usage: node resources.mjs BASE_URL PUBLISH_TOKEN
//   BASE_URL is the root of `mcpbus serve` (crates/mcpbus-cli/tests/fixtures/http.toml): the MCP
//   endpoint is BASE_URL/mcp, the publish endpoint BASE_URL/publish.
//
// Needs `npm ci` in this directory (`bash scripts/test.sh` does it). Nothing here knows the
// events extension: `client.listen({ resourceSubscriptions })`, `client.readResource` and the
// handler registered with `setNotificationHandler('notifications/resources/updated')`, which the
// SDK runs for the notifications of the listen stream. Steps, each checked:
//   - 2026-07-28 is negotiated; reading mcpbus://retained/build/status before anything was
//     published is -32602 (2026-07-28 reports an unknown resource as invalid params, where the
//     handshake era says -32002);
//   - listen({ resourceSubscriptions: [mcpbus://retained/build/status] }) is honoured as asked;
//     then POST /publish of a retained event on deploy/status, then two on build/status;
//   - the handler gets notifications/resources/updated for the URI once per build/status publish
//     (the deploy/status publish, sent first, notifies nothing for it), and reading the resource
//     after each gives that publish's eventId and payload.
//
// Prints one JSON summary line on success; on any mismatch prints "interop FAILED: ..." to stderr
// and exits 1 (2 for bad usage, 3 when the client is not installed).

const OVERALL_TIMEOUT_MS = 60_000;
const DELIVERY_TIMEOUT_MS = 15_000;
const MODERN = '2026-07-28';
const URI = 'mcpbus://retained/build/status';

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

function within(ms, promise, what) {
    let timer;
    return Promise.race([
        promise,
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Mismatch(`${what}: nothing within ${ms} ms`)), ms))),
    ]).finally(() => clearTimeout(timer));
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
    // The SDK may cache resources/read results; every read here must reach the server.
    const result = await client.readResource({ uri: URI }, { cacheMode: 'bypass' });
    check(result.contents?.length === 1 && result.contents[0].uri === URI, `readResource ${URI}: ${JSON.stringify(result)}`);
    return JSON.parse(result.contents[0].text);
}

async function run(baseUrl, token) {
    const client = new Client({ name: 'mcpbus-interop-ts-modern-resources', version: '1' }, { versionNegotiation: { mode: { pin: MODERN } } });
    // Every notifications/resources/updated, in order; `next` resolves on the next one.
    const updates = [];
    let next = () => {};
    client.setNotificationHandler('notifications/resources/updated', notification => {
        updates.push(notification.params.uri);
        next();
    });
    const nextUpdate = () => new Promise(resolve => (next = resolve));

    await client.connect(new StreamableHTTPClientTransport(new URL(`${baseUrl}/mcp`)));
    try {
        check(client.getNegotiatedProtocolVersion() === MODERN, `negotiated ${client.getNegotiatedProtocolVersion()}`);
        const before = await client.readResource({ uri: URI }, { cacheMode: 'bypass' }).then(
            () => null,
            e => e.code,
        );
        check(before === -32602, `reading ${URI} before any publish: ${before}, not -32602`);

        const subscription = await client.listen({ resourceSubscriptions: [URI] });
        const seen = [];
        try {
            const honored = subscription.honoredFilter.resourceSubscriptions;
            check(JSON.stringify(honored) === JSON.stringify([URI]), `listen honoured ${JSON.stringify(subscription.honoredFilter)}`);
            const other = await publish(baseUrl, token, { topic: 'deploy/status', payload: { env: 'prod' }, retained: true });
            check(other.retained === true, `/publish deploy/status: ${JSON.stringify(other)}`);
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
        } finally {
            await subscription.close();
        }
        // The listen stream is ordered: had the deploy/status publish notified the URI, that
        // notification would be among these.
        check(JSON.stringify(updates) === JSON.stringify([URI, URI]), `updates: ${JSON.stringify(updates)}`);
        return {
            ok: true,
            sdk: '@modelcontextprotocol/client',
            protocolVersion: client.getNegotiatedProtocolVersion(),
            uri: URI,
            updates,
            readEventIds: seen,
            readBeforePublish: before,
        };
    } finally {
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
