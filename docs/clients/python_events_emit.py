"""Topic events (events/emit) with the MCP Python SDK 2.x, in the handshake era."""

import json
import sys
from typing import Any

import anyio
from mcp import Client
from mcp.client.extension import ClientExtension, NotificationBinding
from mcp_types import Request, Result
from pydantic import BaseModel


class Event(BaseModel):
    topic: str
    eventId: str
    payload: Any = None


class TopicEvents(ClientExtension):
    """Hands every events/emit notification to `on_event`."""

    identifier = "mcpbus/events"

    def __init__(self, on_event):
        self.on_event = on_event

    def notifications(self):
        return [NotificationBinding(method="events/emit", params_type=Event, handler=self.on_event)]


async def main(url: str) -> None:
    received = anyio.Event()

    async def on_event(event: Event) -> None:
        print(event.topic, json.dumps(event.payload), flush=True)
        received.set()  # this example stops after one event

    async with Client(url, mode="legacy", extensions=[TopicEvents(on_event)]) as client:
        subscribe = Request[dict[str, Any], str](method="events/subscribe", params={"topics": ["alerts/+"]})
        await client.session.send_request(subscribe, Result)
        await received.wait()


anyio.run(main, sys.argv[1])
