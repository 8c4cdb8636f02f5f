// SEP-3415 events (events/stream) with the MCP TypeScript client 2.x, at MCP 2026-07-28.
import { Client, StreamableHTTPClientTransport, fromJsonSchema } from '@modelcontextprotocol/client';

const client = new Client({ name: 'alerts-watcher', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
const anyObject = fromJsonSchema({ type: 'object' });
const stop = new AbortController(); // aborting the request ends the subscription
client.setNotificationHandler('notifications/events/event', { params: anyObject }, event => {
    // event: { eventId, name, data: { topic, payload, ... }, cursor } (keep the cursor to resume)
    console.log(event.data.topic, JSON.stringify(event.data.payload));
    stop.abort(); // this example stops after one event
});
await client.connect(new StreamableHTTPClientTransport(new URL(process.argv[2])));
const stream = { method: 'events/stream', params: { name: 'alerts/+', arguments: {} } };
await client.request(stream, anyObject, { signal: stop.signal, timeout: 24 * 3600_000 }).catch(error => {
    if (!stop.signal.aborted) throw error;
});
await client.close();
