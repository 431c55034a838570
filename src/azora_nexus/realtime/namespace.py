"""The Socket.IO handlers: connect, subscribe (with resume), unsubscribe, ping, disconnect."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from socketio.exceptions import ConnectionRefusedError as SocketRefused

from azora_nexus.auth.tokens import Principal, read_token
from azora_nexus.domain.privacy.identity import subject_hash
from azora_nexus.errors import Invalid, NexusError
from azora_nexus.events.envelope import Event, now_ms, parse_event_id
from azora_nexus.events.taxonomy import TypeSelector
from azora_nexus.realtime.engine import SocketServer, record_websockets
from azora_nexus.realtime.fanout import Fanout
from azora_nexus.realtime.heartbeat import Heartbeat
from azora_nexus.realtime.replay import replay
from azora_nexus.realtime.subscriptions import Registry, Subscriber
from azora_nexus.realtime.wire import Wires

if TYPE_CHECKING:
    from azora_nexus.nexus import Nexus

logger = logging.getLogger(__name__)

Ack = dict[str, Any]
# Announced when a user's data is erased (payload: subjectSha256, never the id).
ERASED = "system.user.erased"


def failure(exc: NexusError) -> Ack:
    return {"ok": False, "error": {"code": exc.code, "message": exc.message}}


def parse_request(data: object) -> tuple[TypeSelector, str | None]:
    """The types and `after` of a subscribe or unsubscribe; Invalid when malformed."""
    if not isinstance(data, dict):
        raise Invalid("expected an object {types: [...], after?: id}")
    types = data.get("types")
    if not isinstance(types, list) or not types:
        raise Invalid("types must be a non-empty list of event types or patterns")
    selector = TypeSelector.parse(types)
    after = data.get("after")
    if after is not None:
        if not isinstance(after, str):
            raise Invalid("after must be an event id string")
        parse_event_id(after)
    return selector, after


class Realtime:
    """This node's sockets; registers its handlers on `sio` and serves once attached."""

    def __init__(self, sio: SocketServer, *, max_sockets_per_user: int = 20) -> None:
        self.sio = sio
        self.max_sockets_per_user = max_sockets_per_user
        self.registry = Registry()
        self.wires = Wires()
        record_websockets(sio.eio, self.wires.by_sid)
        self.fanout = Fanout(sio, self.registry, self.wires)
        self.heartbeat = Heartbeat(sio.eio.ping_interval, sio.eio.ping_timeout)
        self.nexus: Nexus | None = None
        # Tasks of this node's sockets (a direct session's handlers, its close): kept
        # referenced until done.
        self.tasks: set[asyncio.Task[Any]] = set()
        for event, handler in {
            "connect": self.on_connect,
            "disconnect": self.on_disconnect,
            "subscribe": self.on_subscribe,
            "unsubscribe": self.on_unsubscribe,
            "ping": self.on_ping,
        }.items():
            sio.on(event, handler)

    @asynccontextmanager
    async def attached(self, nexus: Nexus) -> AsyncIterator[None]:
        """Serve sockets from `nexus`'s stream while the context lasts."""
        self.nexus = nexus
        self.registry.metrics = self.fanout.metrics = nexus.metrics
        nexus.tailer.add_listener(self.fanout.dispatch)
        nexus.tailer.add_listener(self.disconnect_erased)
        pinging = asyncio.create_task(self.heartbeat.run(), name="socket pings")
        try:
            yield
        finally:
            pinging.cancel()
            await asyncio.gather(pinging, return_exceptions=True)
            nexus.tailer.remove_listener(self.disconnect_erased)
            nexus.tailer.remove_listener(self.fanout.dispatch)
            for subscriber in list(self.registry.sockets.values()):
                if subscriber.replay is not None:
                    subscriber.replay.cancel()
            self.nexus = None

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` as a task of this node's sockets."""
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def disconnect_erased(self, events: Sequence[Event]) -> None:
        """Close this node's sockets of users erased just now (a reconnect is refused)."""
        erased = {e.payload.get("subjectSha256") for e in events if e.type == ERASED}
        if not erased:
            return
        for subscriber in list(self.registry.sockets.values()):
            if subject_hash(subscriber.principal.user_id) in erased:
                await self.on_disconnect(subscriber.sid)
                await self.sio.disconnect(subscriber.sid)

    def _principal(self, auth: object) -> Principal:
        if self.nexus is None:
            raise SocketRefused("unavailable: the server is starting or stopping")
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token:
            raise SocketRefused("unauthorized: missing token (connect with auth: {token})")
        try:
            return read_token(self.nexus.jwt_secret, token)
        except NexusError as exc:
            raise SocketRefused(f"unauthorized: {exc.message}") from exc

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: object = None) -> None:
        """Accept a valid token (no database round trip) and register the socket.

        No per-user room: fan-out finds a user's sockets through the registry's indexes.
        """
        principal = self._principal(auth)
        if self.nexus is not None and principal.user_id in self.nexus.erased:
            raise SocketRefused("unauthorized: this account was erased")
        if self.registry.per_user[principal.user_id] >= self.max_sockets_per_user:
            raise SocketRefused(
                f"too_many_sockets: at most {self.max_sockets_per_user} open at once per user"
            )
        eio_sid = self.sio.eio_sid_of(sid)
        self.registry.add(Subscriber(sid=sid, eio_sid=eio_sid, principal=principal))

    async def on_disconnect(self, sid: str, *_: object) -> None:
        subscriber = self.registry.remove(sid)
        if subscriber is not None and subscriber.replay is not None:
            subscriber.replay.cancel()

    async def on_subscribe(self, sid: str, data: object = None) -> Ack:
        """Subscribe; with `after`, replay what was missed, then go live (no gap, no repeat)."""
        subscriber = self.registry.get(sid)
        if subscriber is None or self.nexus is None:
            return failure(NexusError("not connected"))
        try:
            selector, after = parse_request(data)
        except NexusError as exc:
            return failure(exc)
        async with subscriber.lock:
            # One replay at a time per socket, so their windows and buffers never mix.
            if subscriber.replay is not None:
                await asyncio.wait([subscriber.replay])
            if after is not None:
                subscriber.buffer = subscriber.buffer if subscriber.buffer is not None else []
            self.registry.subscribe(subscriber, selector)
            if after is not None:
                subscriber.replay = asyncio.create_task(
                    replay(self.nexus.events, self.fanout, subscriber, selector, after)
                )
        return {"ok": True, "subscribed": selector.names}

    async def on_unsubscribe(self, sid: str, data: object = None) -> Ack:
        subscriber = self.registry.get(sid)
        if subscriber is None:
            return failure(NexusError("not connected"))
        try:
            selector, _ = parse_request(data)
        except NexusError as exc:
            return failure(exc)
        self.registry.unsubscribe(subscriber, selector)
        return {"ok": True, "unsubscribed": selector.names, "subscribed": subscriber.subscribed}

    async def on_ping(self, sid: str, *_: object) -> Ack:
        return {"pong": now_ms()}
