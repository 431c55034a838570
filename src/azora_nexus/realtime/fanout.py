"""Fan-out: each event the node's tailer reads goes to this node's matching sockets.

One pass per batch of events and no task per recipient: each event's Socket.IO packet and
websocket frame are built once; a websocket that is in turn (always, for a session opened
on a websocket; for one Engine.IO serves, while its writer is idle) gets the frame written
straight to its transport (all of the batch's frames in one write), any other socket
(polling, upgrading, or with packets still queued) gets the packet through Engine.IO's
queue, behind what is already there. A socket that does not read its events
is dropped once its backlog passes a bound, rather than held in memory without end.
"""

from __future__ import annotations

import asyncio
import enum
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from engineio import packet as eio_packet

from azora_nexus.events.envelope import Event
from azora_nexus.metrics import NodeMetrics
from azora_nexus.realtime.engine import REASON, Sessions, SocketServer
from azora_nexus.realtime.subscriptions import Registry, Subscriber
from azora_nexus.realtime.wire import Wire, Wires, text_frame

# Past this, a socket is a slow consumer: 1 MiB is seconds of events at any sane rate.
MAX_BUFFERED_BYTES = 1 << 20
# The same bound for sockets served through Engine.IO's queue (polling, mid-upgrade).
MAX_QUEUED_PACKETS = 1000


def event_packet(
    sio: SocketServer, event: Event, offset: str | None = None, *, tagged: bool = True
) -> eio_packet.Packet:
    """The Engine.IO message carrying `event` under its type, as `socket.on(type)` expects,
    with its id as the last argument when `tagged`: the offset a recovering client presents
    (recovery.py; clients.py says who is not tagged). The same for every recipient of a
    kind, so the packet is still built at most twice per event."""
    return sio.event_message(event.type, event.to_wire(), (offset or event.id) if tagged else None)


class Outcome(enum.Enum):
    """What became of one event for one socket."""

    WRITTEN = "written"  # its frame went straight to the socket's transport
    QUEUED = "queued"  # queued behind the socket's earlier packets (Engine.IO writes it)
    DROPPED = "dropped"  # the socket fell too far behind and was disconnected
    GONE = "gone"  # the socket is closing
    QUEUE = "queue"  # not written directly: Engine.IO's queue must take it


@dataclass(frozen=True, slots=True)
class Outgoing:
    """An event encoded once: as an Engine.IO packet and as the websocket frame of it."""

    packet: eio_packet.Packet
    frame: bytes


def encode(
    sio: SocketServer, event: Event, offset: str | None = None, *, tagged: bool = True
) -> Outgoing:
    """The packet and frame that deliver `event` to any socket (with `offset` instead of
    its id as the recovery offset, for a replayed event older than one sent before)."""
    packet = event_packet(sio, event, offset, tagged=tagged)
    encoded = packet.encode()
    data = encoded.encode() if isinstance(encoded, str) else encoded
    return Outgoing(packet, text_frame(data))


class Fanout:
    """Sends events to sockets of this node."""

    def __init__(self, sio: SocketServer, registry: Registry, wires: Wires) -> None:
        self.sio = sio
        self.registry = registry
        self.wires = wires
        self.max_buffered_bytes = MAX_BUFFERED_BYTES
        self.max_queued_packets = MAX_QUEUED_PACKETS
        # Live deliveries by outcome since start: which path events take (tests, profiles).
        self.outcomes: Counter[Outcome] = Counter()
        self._closing: set[asyncio.Task[None]] = set()
        self.metrics: NodeMetrics | None = None  # the node's, set while it serves
        # The last event handed to every socket subscribed then: a socket subscribing now
        # gets live every event after it (set from the tailer's start when serving begins).
        self.through = "0-0"

    async def dispatch(self, events: Sequence[Event]) -> None:
        """Every live event to every socket that subscribed to it and may see it, in order."""
        # Frames per websocket for a batch of several events, written together at its end
        # (a socket that got one keeps this route); a lone event is written at once.
        frames: dict[Wire, list[bytes]] | None = {} if len(events) > 1 else None
        wire_of = self.wires.by_sid.get
        for event in events:
            recipients = self.registry.recipients(event)
            if not recipients:
                self.through = event.id
                continue
            outs: dict[bool, Outgoing] = {}  # tagged with its offset or not (clients.py)
            order = event.order
            written = queued = dropped = 0
            for subscriber in recipients:
                if not subscriber.admit(event, order):
                    continue
                out = outs.get(subscriber.offsets)
                if out is None:
                    out = outs[subscriber.offsets] = encode(
                        self.sio, event, tagged=subscriber.offsets
                    )
                # The common case stays synchronous: no coroutine per recipient.
                wire = wire_of(subscriber.eio_sid)
                outcome = (
                    Outcome.QUEUE if wire is None else self._write(subscriber, wire, out, frames)
                )
                if outcome is Outcome.WRITTEN:
                    written += 1
                    continue
                if outcome is Outcome.QUEUE:
                    outcome = await self._queue(subscriber, wire, out)
                queued += outcome is Outcome.QUEUED
                dropped += outcome is Outcome.DROPPED
            self._count(event, written, queued, dropped)
            self.through = event.id
        for wire, pending in (frames or {}).items():
            wire.transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def _count(self, event: Event, written: int, queued: int, dropped: int) -> None:
        self.outcomes[Outcome.WRITTEN] += written
        self.outcomes[Outcome.QUEUED] += queued
        self.outcomes[Outcome.DROPPED] += dropped
        if self.metrics is None:
            return
        if written or queued:
            self.metrics.events_delivered.labels(event.type).inc(written + queued)
        if dropped:
            self.metrics.events_dropped.labels(event.type, "slow_consumer").inc(dropped)

    async def _queue(self, subscriber: Subscriber, wire: Wire | None, out: Outgoing) -> Outcome:
        """The packet onto Engine.IO's queue for the socket, behind what waits there."""
        socket = self.sio.eio.session(subscriber.eio_sid)
        if socket is None or Sessions.is_gone(socket):
            return Outcome.GONE
        if Sessions.backlog(socket) > self.max_queued_packets:
            self._drop(subscriber, wire)
            return Outcome.DROPPED
        await socket.send(out.packet)
        return Outcome.QUEUED

    def _write(
        self,
        subscriber: Subscriber,
        wire: Wire,
        out: Outgoing,
        frames: dict[Wire, list[bytes]] | None,
    ) -> Outcome:
        """The frame written to `wire` (or onto the batch's writes), unless it must queue."""
        if not wire.open():
            return Outcome.GONE  # its disconnect is on the way
        transport = wire.transport
        if transport.get_write_buffer_size() > self.max_buffered_bytes:
            self._drop(subscriber, wire)
            if frames is not None:
                frames.pop(wire, None)
            return Outcome.DROPPED
        if frames is None:
            if not wire.in_turn():
                return Outcome.QUEUE
            transport.write(out.frame)
            return Outcome.WRITTEN
        pending = frames.get(wire)
        if pending is None:
            if not wire.in_turn():
                return Outcome.QUEUE
            pending = frames[wire] = []
        pending.append(out.frame)
        return Outcome.WRITTEN

    def cut(self, subscriber: Subscriber) -> None:
        """Close a socket's transport (no Socket.IO DISCONNECT): its client reconnects and
        recovers from what it has (a replay that could not be finished)."""
        self._drop(subscriber, self.wires.get(subscriber.eio_sid))

    def _drop(self, subscriber: Subscriber, wire: Wire | None) -> None:
        """Disconnect a socket that does not keep up, and forget it now."""
        self.registry.remove(subscriber.sid)
        if subscriber.replay is not None:
            subscriber.replay.cancel()
        if wire is not None:
            # Abort frees the buffer at once; the lost connection closes the session.
            wire.transport.abort()
            return
        task = asyncio.create_task(self.sio.eio.end(subscriber.eio_sid, REASON.SERVER_DISCONNECT))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def send(self, subscriber: Subscriber, event: Event) -> None:
        """One event to one socket (a replay), after what was sent to it before."""
        order = event.order
        if order > subscriber.sent_max:
            subscriber.sent_max = order
            out = encode(self.sio, event, tagged=subscriber.offsets)
        else:  # older than an event it has: its offset stays at that one
            newest = subscriber.sent_max
            out = encode(self.sio, event, f"{newest[0]}-{newest[1]}", tagged=subscriber.offsets)
        wire = self.wires.get(subscriber.eio_sid)
        if wire is not None and wire.open():
            # A replay may be long: wait for the client to read rather than buffer it all.
            await wire.writable()
            if wire.open() and wire.in_turn():
                wire.transport.write(out.frame)
                return
        await self.sio.eio.send_packet(subscriber.eio_sid, out.packet)
