// Topic events (events/emit) with the MCP TypeScript client 2.x, in the handshake era.
import { Client, StreamableHTTPClientTransport, fromJsonSchema } from '@modelcontextprotocol/client';

const client = new Client({ name: 'alerts-watcher', version: '1.0.0' });
const anyObject = fromJsonSchema({ type: 'object' });
const received = new Promise(resolve => {
    client.setNotificationHandler('events/emit', { params: anyObject }, event => {
        console.log(event.topic, JSON.stringify(event.payload));
        resolve(); // this example stops after one event
    });
});
await client.connect(new StreamableHTTPClientTransport(new URL(process.argv[2])));
await client.request({ method: 'events/subscribe', params: { topics: ['alerts/+'] } }, anyObject);
await received;
await client.close();
