#!/usr/bin/env node
// Interop: the official MCP TypeScript SDK client talks to `mcpbus serve` over Streamable HTTP.
//
// Usage: node client.mjs BASE_URL PUBLISH_TOKEN
//   BASE_URL is the server's root (http://127.0.0.1:PORT); the MCP endpoint is BASE_URL/mcp and
//   the publish endpoint BASE_URL/publish.
//
// Needs `npm ci` in this directory (@modelcontextprotocol/sdk and zod, pinned in package.json and
// package-lock.json); `bash scripts/test.sh` does it.
//
// Steps, each checked: connect (initialize) with `Client` + `StreamableHTTPClientTransport`;
// callTool whoami; a raw `events/subscribe` through the SDK's generic `client.request()` with a
// zod result schema (the SDK knows nothing of the events extension) for build/status and this
// session's own inbox; then two events published out of band through `POST /publish` (fetch,
// bearer token), which must reach the notification handler registered with
// `client.setNotificationHandler(<zod schema whose method is the literal "events/emit">)`, with the
// eventId, payload, priority, source and retained flag that /publish was given and reported.
//
// The SDK strips unknown capability members when it parses InitializeResult (zod strip mode), so
// `client.getServerCapabilities()` has no `events`; the events capability is checked in the raw
// initialize answer instead (the summary's sdkKeepsEventsCapability reports the SDK's view), and
// the SDK's view must have the same object under `experimental["mcpbus/events"]`.
//
// Which HTTP stream carried them: the transport is given a `fetch` that records the raw body of
// every response by request method; the events must appear on the GET (standalone SSE) stream
// with an SSE id, and in no POST response.
//
// Prints one JSON summary line on success; on any mismatch prints "interop FAILED: ..." to stderr
// and exits 1 (2 for bad usage, 3 when the SDK is not installed).

const OVERALL_TIMEOUT_MS = 60_000;
const DELIVERY_TIMEOUT_MS = 15_000;
const GET_STREAM_TIMEOUT_MS = 15_000;

class Mismatch extends Error {}

function check(condition, message) {
    if (!condition) throw new Mismatch(message);
}

let Client, StreamableHTTPClientTransport, z;
try {
    ({ Client } = await import('@modelcontextprotocol/sdk/client/index.js'));
    ({ StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js'));
    ({ z } = await import('zod'));
} catch (e) {
    console.error(`interop FAILED: cannot import the MCP TypeScript SDK (${e.message}); run npm ci in tests/interop/ts (scripts/test.sh does)`);
    process.exit(3);
}

const EventsEmitSchema = z.object({
    method: z.literal('events/emit'),
    params: z
        .object({
            topic: z.string(),
            eventId: z.string(),
            payload: z.unknown(),
            retained: z.boolean().optional(),
            priority: z.enum(['urgent', 'high', 'normal', 'low']).optional(),
            source: z.string().optional(),
            expiresAt: z.string().optional(),
        })
        .passthrough(),
});

const SubscribeResultSchema = z
    .object({
        subscribed: z.array(z.object({ pattern: z.string() }).passthrough()),
        rejected: z.array(z.object({ pattern: z.string(), reason: z.string() }).passthrough()),
        retained: z.array(z.object({ topic: z.string(), eventId: z.string() }).passthrough()),
    })
    .passthrough();

/** A fetch for the SDK transport that keeps a copy of every response body, by request method. */
function recordingFetch() {
    const exchanges = [];
    let getOpen;
    const getStreamOpen = new Promise(resolve => (getOpen = resolve));
    const fetchFn = async (url, init = {}) => {
        const method = (init.method ?? 'GET').toUpperCase();
        const response = await fetch(url, init);
        const record = {
            method,
            status: response.status,
            contentType: response.headers.get('content-type') ?? '',
            body: '',
            done: null,
        };
        exchanges.push(record);
        if (!response.body) return response;
        const [forSdk, forUs] = response.body.tee();
        record.done = (async () => {
            const decoder = new TextDecoder();
            try {
                for await (const chunk of forUs) record.body += decoder.decode(chunk, { stream: true });
            } catch {
                // the SDK aborted the stream (close): what arrived is kept
            }
        })();
        if (method === 'GET' && response.status === 200 && record.contentType.startsWith('text/event-stream')) {
            getOpen();
        }
        return new Response(forSdk, { status: response.status, statusText: response.statusText, headers: response.headers });
    };
    return { fetchFn, exchanges, getStreamOpen };
}

/** [sseId, message] of every SSE event in the recorded responses to `method`. */
function sseMessages(exchanges, method) {
    const out = [];
    for (const ex of exchanges) {
        if (ex.method !== method || !ex.contentType.startsWith('text/event-stream')) continue;
        for (const block of ex.body.replace(/\r\n/g, '\n').split('\n\n')) {
            let id = null;
            const data = [];
            for (const line of block.split('\n')) {
                if (line.startsWith('id:')) id = line.slice(3).trim();
                else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
            }
            if (data.join('') !== '') out.push([id, JSON.parse(data.join('\n'))]);
        }
    }
    return out;
}

/** Every application/json response body to `method`. */
function jsonBodies(exchanges, method) {
    return exchanges
        .filter(ex => ex.method === method && ex.contentType.startsWith('application/json') && ex.body)
        .map(ex => JSON.parse(ex.body));
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

function within(ms, promise, what) {
    let timer;
    return Promise.race([
        promise,
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Mismatch(`${what}: nothing within ${ms} ms`)), ms))),
    ]).finally(() => clearTimeout(timer));
}

function deepEqual(a, b) {
    return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}

function sortKeys(v) {
    if (Array.isArray(v)) return v.map(sortKeys);
    if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map(k => [k, sortKeys(v[k])]));
    return v;
}

async function run(baseUrl, token) {
    const recorder = recordingFetch();
    const transport = new StreamableHTTPClientTransport(new URL(`${baseUrl}/mcp`), { fetch: recorder.fetchFn });
    const client = new Client({ name: 'mcpbus-interop-ts', version: '0.1.0' });

    // events/emit as the SDK's notification handler got them (validated by our schema), by eventId.
    const emitted = new Map();
    const waiters = new Map();
    const arrival = id => {
        if (!waiters.has(id)) {
            let resolve;
            const promise = new Promise(r => (resolve = r));
            waiters.set(id, { promise, resolve });
        }
        return waiters.get(id);
    };
    client.setNotificationHandler(EventsEmitSchema, notification => {
        emitted.set(notification.params.eventId, notification.params);
        arrival(notification.params.eventId).resolve();
    });
    let fallbackSaw = [];
    client.fallbackNotificationHandler = async notification => {
        fallbackSaw.push(notification.method);
    };

    await client.connect(transport);
    const info = client.getServerVersion();
    check(info?.name === 'mcpbus', `serverInfo: ${JSON.stringify(info)}`);
    // The SDK's ServerCapabilities schema strips members it does not know (zod strip mode), so
    // client.getServerCapabilities() has no `events`: read it from the raw initialize answer.
    const sdkCaps = client.getServerCapabilities() ?? {};
    const posts = recorder.exchanges.filter(ex => ex.method === 'POST' && ex.done);
    await within(5_000, Promise.all(posts.map(ex => ex.done)), 'reading the initialize answer');
    const initAnswer = [...jsonBodies(recorder.exchanges, 'POST').flat(), ...sseMessages(recorder.exchanges, 'POST').map(([, m]) => m)]
        .find(m => m?.result?.protocolVersion !== undefined && m?.result?.capabilities);
    const rawEvents = initAnswer?.result?.capabilities?.events;
    check(
        rawEvents && Array.isArray(rawEvents.topics) && rawEvents.topics.some(t => t.pattern === 'build/status'),
        `capabilities.events missing from the raw initialize answer: ${JSON.stringify(initAnswer)}`,
    );
    // The same capability under experimental["mcpbus/events"], which the SDK keeps.
    const sdkEvents = sdkCaps.experimental?.['mcpbus/events'];
    check(
        JSON.stringify(sdkEvents) === JSON.stringify(rawEvents),
        `getServerCapabilities().experimental["mcpbus/events"] is not capabilities.events: ${JSON.stringify(sdkCaps)}`,
    );
    const sessionId = transport.sessionId;
    check(typeof sessionId === 'string' && sessionId, 'no Mcp-Session-Id after initialize');

    // callTool whoami
    const who = await client.callTool({ name: 'whoami', arguments: {} });
    check(!who.isError, `whoami isError: ${JSON.stringify(who)}`);
    const whoami = who.structuredContent ?? JSON.parse(who.content.find(c => c.type === 'text').text);
    const agentId = whoami.agentId;
    check(typeof agentId === 'string' && agentId, `whoami: ${JSON.stringify(whoami)}`);
    check(whoami.sessionId === sessionId, `whoami sessionId ${whoami.sessionId} != Mcp-Session-Id ${sessionId}`);

    // raw events/subscribe through the generic request API
    const inbox = `agents/${agentId}/inbox`;
    const sub = await client.request(
        { method: 'events/subscribe', params: { topics: ['build/status', inbox] } },
        SubscribeResultSchema,
    );
    const subscribed = sub.subscribed.map(s => s.pattern).sort();
    check(
        deepEqual(subscribed, ['build/status', inbox].sort()) && sub.rejected.length === 0,
        `subscribe: ${JSON.stringify(sub)}`,
    );

    // The SDK opens its GET stream after notifications/initialized; wait so the publish cannot race it.
    await within(GET_STREAM_TIMEOUT_MS, recorder.getStreamOpen, 'the SDK opening its GET stream');

    const buildBody = {
        topic: 'build/status',
        payload: { status: 'red', build: 9, via: 'typescript-http' },
        priority: 'urgent',
        source: 'ci',
    };
    const inboxBody = {
        topic: inbox,
        payload: { text: 'hello from /publish', nested: { ok: true } },
        eventId: `ts-inbox-${agentId}`,
    };
    const buildReport = await publish(baseUrl, token, buildBody);
    const inboxReport = await publish(baseUrl, token, inboxBody);
    check(buildReport.delivered === 1 && buildReport.retained === true, `/publish build/status: ${JSON.stringify(buildReport)}`);
    check(
        inboxReport.delivered === 1 && inboxReport.retained === false && inboxReport.eventId === inboxBody.eventId,
        `/publish inbox: ${JSON.stringify(inboxReport)}`,
    );

    for (const [report, body] of [
        [buildReport, buildBody],
        [inboxReport, inboxBody],
    ]) {
        const id = report.eventId;
        await within(DELIVERY_TIMEOUT_MS, arrival(id).promise, `events/emit ${id} (${body.topic}); received ${[...emitted.keys()]}`);
        const got = emitted.get(id);
        check(got.topic === body.topic, `topic of ${id}: ${JSON.stringify(got)}`);
        check(deepEqual(got.payload, body.payload), `payload of ${id}: ${JSON.stringify(got)}`);
        check(got.retained === report.retained, `retained of ${id}: ${JSON.stringify(got)}`);
        check((got.priority ?? 'normal') === (body.priority ?? 'normal'), `priority of ${id}: ${JSON.stringify(got)}`);
        check(got.source === body.source, `source of ${id}: ${JSON.stringify(got)}`);
    }

    // The session is still usable after the events.
    const again = await client.callTool({ name: 'whoami', arguments: {} });
    check(again.structuredContent?.agentId === agentId, `second whoami: ${JSON.stringify(again)}`);

    // End the session (DELETE), then close the transport; let the recorder drain what it has.
    await transport.terminateSession();
    await client.close();
    await Promise.all(recorder.exchanges.map(ex => ex.done).filter(Boolean).map(p => within(5_000, p, 'a response body').catch(() => {})));

    const ids = [buildReport.eventId, inboxReport.eventId];
    const onGet = new Map(
        sseMessages(recorder.exchanges, 'GET')
            .filter(([, m]) => m.method === 'events/emit')
            .map(([sseId, m]) => [m.params.eventId, sseId]),
    );
    check(ids.every(id => onGet.has(id)), `events/emit on the GET stream: ${[...onGet.keys()]}; expected ${ids}`);
    check(ids.every(id => onGet.get(id)), `events/emit without an SSE id on the GET stream: ${JSON.stringify([...onGet])}`);
    const onPost = [
        ...sseMessages(recorder.exchanges, 'POST').map(([, m]) => m),
        ...jsonBodies(recorder.exchanges, 'POST').flat(),
    ].filter(m => m.method === 'events/emit');
    check(onPost.length === 0, `events/emit travelled on POST responses: ${JSON.stringify(onPost)}`);

    return {
        ok: true,
        sdk: '@modelcontextprotocol/sdk',
        protocolVersion: transport.protocolVersion,
        sessionId,
        subscribed,
        published: [...ids].sort(),
        receivedOnGetStream: ids.filter(id => onGet.has(id) && emitted.has(id)).sort(),
        sseIds: Object.fromEntries(ids.map(id => [id, onGet.get(id)])),
        getRequests: recorder.exchanges.filter(ex => ex.method === 'GET').map(ex => [ex.status, ex.contentType]),
        observedVia: 'client.setNotificationHandler(events/emit schema)',
        fallbackHandlerSaw: fallbackSaw,
        sdkKeepsEventsCapability: 'events' in sdkCaps,
    };
}

const [baseUrlArg, token] = process.argv.slice(2);
if (!baseUrlArg || !token || process.argv.length !== 4) {
    console.error('Usage: node client.mjs BASE_URL PUBLISH_TOKEN');
    process.exit(2);
}
const baseUrl = baseUrlArg.replace(/\/+$/, '');
const overall = setTimeout(() => {
    console.error(`interop FAILED (timeout): no result within ${OVERALL_TIMEOUT_MS} ms`);
    process.exit(1);
}, OVERALL_TIMEOUT_MS);
try {
    const summary = await run(baseUrl, token);
    console.log(JSON.stringify(sortKeys(summary)));
    clearTimeout(overall);
    process.exit(0);
} catch (e) {
    const kind = e instanceof Mismatch ? 'mismatch' : e?.constructor?.name ?? 'error';
    console.error(`interop FAILED (${kind}): ${e?.stack ?? e}`);
    process.exit(1);
}
