"""SEP-3415 events (events/stream) with the MCP Python SDK 2.x, at MCP 2026-07-28."""

import json
import sys
from typing import Any

import anyio
from mcp import Client
from mcp.client.extension import ClientExtension, NotificationBinding
from mcp_types import Request, Result
from pydantic import BaseModel


class Occurrence(BaseModel):
    eventId: str
    name: str
    data: dict[str, Any]  # topic, payload, priority, source, retained
    cursor: str | None = None  # keep the last one to resume after a disconnect


class Events(ClientExtension):
    """Hands every notifications/events/event of a push stream to `on_event`."""

    identifier = "io.modelcontextprotocol/events"

    def __init__(self, on_event):
        self.on_event = on_event

    def notifications(self):
        return [NotificationBinding(method="notifications/events/event", params_type=Occurrence, handler=self.on_event)]


async def main(url: str) -> None:
    received = anyio.Event()

    async def on_event(event: Occurrence) -> None:
        print(event.data["topic"], json.dumps(event.data["payload"]), flush=True)
        received.set()  # this example stops after one event

    async with Client(url, extensions=[Events(on_event)]) as client:
        stream = Request[dict[str, Any], str](method="events/stream", params={"name": "alerts/+", "arguments": {}})
        async with anyio.create_task_group() as tg:
            # The request stays open while the stream lasts; cancelling it ends the subscription.
            tg.start_soon(client.session.send_request, stream, Result)
            await received.wait()
            tg.cancel_scope.cancel()


anyio.run(main, sys.argv[1])
