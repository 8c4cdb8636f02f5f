// Topic events (events/emit) with the MCP TypeScript SDK 1.x, in the handshake era.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { z } from 'zod';

const EventsEmit = z.object({
    method: z.literal('events/emit'),
    params: z.object({ topic: z.string(), eventId: z.string(), payload: z.unknown() }).passthrough(),
});

const client = new Client({ name: 'alerts-watcher', version: '1.0.0' });
const received = new Promise(resolve => {
    client.setNotificationHandler(EventsEmit, ({ params }) => {
        console.log(params.topic, JSON.stringify(params.payload));
        resolve(); // this example stops after one event
    });
});
await client.connect(new StreamableHTTPClientTransport(new URL(process.argv[2])));
await client.request({ method: 'events/subscribe', params: { topics: ['alerts/+'] } }, z.object({}).passthrough());
await received;
await client.close();
