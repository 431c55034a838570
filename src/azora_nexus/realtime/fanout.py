"""Fan-out: each event the node's tailer reads goes to this node's matching sockets.

Delivery is per event: the packet is encoded once and queued on every matching socket in
turn; no task per recipient.
"""

from __future__ import annotations

from collections.abc import Sequence

import socketio
from engineio import packet as eio_packet
from socketio import packet as sio_packet

from azora_nexus.events.envelope import Event
from azora_nexus.realtime.subscriptions import Registry, Subscriber


def event_packet(sio: socketio.AsyncServer, event: Event) -> eio_packet.Packet:
    """The Engine.IO message carrying `event` under its type, as `socket.on(type)` expects."""
    packet = sio.packet_class(sio_packet.EVENT, namespace="/", data=[event.type, event.to_wire()])
    return eio_packet.Packet(eio_packet.MESSAGE, packet.encode())


class Fanout:
    """Sends events to sockets of this node."""

    def __init__(self, sio: socketio.AsyncServer, registry: Registry) -> None:
        self.sio = sio
        self.registry = registry

    async def dispatch(self, events: Sequence[Event]) -> None:
        """Every live event to every socket that subscribed to it and may see it."""
        for event in events:
            recipients = self.registry.recipients(event)
            if not recipients:
                continue
            packet = event_packet(self.sio, event)
            for subscriber in recipients:
                if subscriber.admit(event):
                    await self.sio.eio.send_packet(subscriber.eio_sid, packet)

    async def send(self, subscriber: Subscriber, event: Event) -> None:
        """One event to one socket (a replay)."""
        await self.sio.eio.send_packet(subscriber.eio_sid, event_packet(self.sio, event))
