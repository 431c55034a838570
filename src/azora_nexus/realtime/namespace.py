"""The Socket.IO handlers: connect, subscribe (with resume), unsubscribe, ping, refresh,
disconnect; and the closing of sockets whose token expired or whose user was erased.
Each socket's recovery session is kept in step with them by session_keeper.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Container, Coroutine, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

from socketio.exceptions import ConnectionRefusedError as SocketRefused

from azora_nexus.auth.tokens import Principal, read_token_expiry
from azora_nexus.domain.privacy.identity import subject_hash, subject_hmac
from azora_nexus.errors import Forbidden, HistoryExpired, Invalid, NexusError, Unauthorized
from azora_nexus.events.envelope import Event, now_ms, parse_event_id
from azora_nexus.events.taxonomy import TypeSelector
from azora_nexus.realtime.clients import takes_offsets
from azora_nexus.realtime.engine import SocketServer, record_websockets
from azora_nexus.realtime.expiry import Expiries
from azora_nexus.realtime.fanout import Fanout
from azora_nexus.realtime.heartbeat import Heartbeat
from azora_nexus.realtime.owed import Owed, Span
from azora_nexus.realtime.replay import replay
from azora_nexus.realtime.session_keeper import SessionKeeper
from azora_nexus.realtime.subscriptions import Registry, Subscriber
from azora_nexus.realtime.wire import Wires

if TYPE_CHECKING:
    from azora_nexus.nexus import Nexus

Ack = dict[str, Any]
# Announced when a user's data is erased (payload: subjectHmac, never the id).
ERASED = "system.user.erased"
# Emitted to a socket the server is about to close, with `{code, message}` saying why.
CLOSING = "closing"
TOKEN_EXPIRED = (
    "token_expired",
    "the access token expired: refresh it in band before exp, or connect with a new one",
)
ACCOUNT_ERASED = ("account_erased", "this account was erased")


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
        self.expiries = Expiries(self.expire)
        self.nexus: Nexus | None = None
        # Tasks of this node's sockets (a direct session's handlers, its close): kept
        # referenced until done.
        self.tasks: set[asyncio.Task[Any]] = set()
        self.sessions = SessionKeeper(sio, self.registry, self.fanout, self.spawn)
        sio.on_connected = self.sessions.on_connected
        for event, handler in {
            "connect": self.on_connect,
            "disconnect": self.on_disconnect,
            "subscribe": self.on_subscribe,
            "unsubscribe": self.on_unsubscribe,
            "ping": self.on_ping,
            "refresh": self.on_refresh,
        }.items():
            sio.on(event, handler)

    @asynccontextmanager
    async def attached(self, nexus: Nexus) -> AsyncIterator[None]:
        """Serve sockets from `nexus`'s stream while the context lasts."""
        self.nexus = nexus
        self.registry.metrics = self.fanout.metrics = nexus.metrics
        nexus.tailer.add_listener(self.fanout.dispatch)
        nexus.tailer.add_listener(self.disconnect_erased)
        nexus.erased.listeners.append(self.close_erased)
        self.fanout.through = nexus.tailer.position
        pings = asyncio.create_task(self.heartbeat.run(), name="socket pings")
        try:
            async with self.sessions.serving(nexus):
                yield
        finally:
            pings.cancel()
            await asyncio.gather(pings, return_exceptions=True)
            self.expiries.close()
            nexus.erased.listeners.remove(self.close_erased)
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
        erased = {e.payload.get("subjectHmac") for e in events if e.type == ERASED}
        if erased and self.nexus is not None:
            key = self.nexus.subject_key
            await self._close_subjects(erased, lambda user_id: subject_hmac(key, user_id))

    def close_erased(self, subjects: set[str]) -> None:
        """This node has just learned of erased users (NOTIFY or poll): close their sockets,
        whether or not the announcement has come through the stream yet."""
        self.spawn(self._close_subjects(subjects, subject_hash))

    async def _close_subjects(
        self, subjects: Container[object], digest: Callable[[str], str]
    ) -> None:
        for subscriber in list(self.registry.sockets.values()):
            if digest(subscriber.principal.user_id) in subjects:
                await self.close(subscriber.sid, *ACCOUNT_ERASED)

    def expire(self, sids: list[str]) -> None:
        """The expiry timer's call: close the sockets whose token expired (not refreshed)."""
        self.spawn(self._close_expired(sids))

    async def _close_expired(self, sids: list[str]) -> None:
        now = time.time()
        for sid in sids:
            subscriber = self.registry.get(sid)
            if subscriber is not None and subscriber.expires_at_s <= now:
                await self.close(sid, *TOKEN_EXPIRED)

    async def close(self, sid: str, code: str, message: str) -> None:
        """Tell the socket why (event `closing`, `{code, message}`), then disconnect it."""
        if self.registry.get(sid) is None:
            return  # closed already (an erasure is heard by NOTIFY and on the stream)
        # Out of the registry first: no event reaches it while the packets go out.
        subscriber = self._forget(sid)
        if subscriber is not None:
            self.sessions.end(subscriber)
        await self.sio.emit(CLOSING, {"code": code, "message": message}, to=sid)
        await self.sio.disconnect(sid)

    def _token(self, auth: object) -> tuple[Principal, int]:
        if self.nexus is None:
            raise SocketRefused("unavailable: the server is starting or stopping")
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token:
            raise SocketRefused("unauthorized: missing token (connect with auth: {token})")
        try:
            return read_token_expiry(self.nexus.jwt_secret, token)
        except NexusError as exc:
            raise SocketRefused(f"unauthorized: {exc.message}") from exc

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: object = None) -> None:
        """Accept a valid token (no database round trip) and register the socket.

        No per-user room: fan-out finds a user's sockets through the registry's indexes.
        """
        principal, expires_at_s = self._token(auth)
        if self.nexus is not None and principal.user_id in self.nexus.erased:
            raise SocketRefused("unauthorized: this account was erased")
        if self.registry.per_user[principal.user_id] >= self.max_sockets_per_user:
            raise SocketRefused(
                f"too_many_sockets: at most {self.max_sockets_per_user} open at once per user"
            )
        eio_sid = self.sio.eio_sid_of(sid)
        subscriber = Subscriber(
            sid=sid,
            eio_sid=eio_sid,
            principal=principal,
            expires_at_s=expires_at_s,
            offsets=takes_offsets(environ.get("QUERY_STRING", "")),
        )
        self.registry.add(subscriber)
        self.expiries.add(sid, expires_at_s)
        await self.sessions.open(subscriber, auth)

    def _forget(self, sid: str) -> Subscriber | None:
        """Take the socket out of this node's registry (and its replay, its expiry)."""
        self.sessions.discard(sid)
        subscriber = self.registry.remove(sid)
        if subscriber is not None:
            self.expiries.discard(sid, subscriber.expires_at_s)
            if subscriber.replay is not None:
                subscriber.replay.cancel()
        return subscriber

    async def on_disconnect(self, sid: str, *_: object) -> None:
        subscriber = self._forget(sid)
        if subscriber is not None:
            self.sessions.linger(subscriber)

    async def on_refresh(self, sid: str, data: object = None) -> Ack:
        """Replace the socket's token with a newer one of the same user, not erased: the
        socket then lives until the new `exp` and has the new token's role."""
        subscriber = self.registry.get(sid)
        if subscriber is None or self.nexus is None:
            return failure(NexusError("not connected"))
        token = data.get("token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            return failure(Invalid("expected an object {token: <JWT>}"))
        try:
            principal, expires_at_s = read_token_expiry(self.nexus.jwt_secret, token)
            if principal.user_id in self.nexus.erased:
                raise Unauthorized("this account was erased")
            if principal.user_id != subscriber.principal.user_id:
                raise Forbidden("the token names another user: a socket keeps its user")
        except NexusError as exc:
            return failure(exc)
        # A role change takes effect here: the audience check reads the principal per event.
        subscriber.principal = principal
        self.expiries.discard(sid, subscriber.expires_at_s)
        subscriber.expires_at_s = expires_at_s
        self.expiries.add(sid, expires_at_s)
        return {"ok": True, "expiresAt": expires_at_s * 1000}

    async def on_subscribe(self, sid: str, data: object = None) -> Ack:
        """Subscribe; with `after`, replay what was missed, then go live (no gap, no repeat)."""
        subscriber = self.registry.get(sid)
        if subscriber is None or self.nexus is None:
            return failure(NexusError("not connected"))
        try:
            selector, after = parse_request(data)
            if after is not None:
                await self._require_kept_after(after)
        except NexusError as exc:
            return failure(exc)
        async with subscriber.lock:
            # One replay at a time per socket, so their windows and buffers never mix.
            if subscriber.replay is not None:
                await asyncio.wait([subscriber.replay])
            if after is not None:
                subscriber.buffer = subscriber.buffer if subscriber.buffer is not None else []
            self.registry.subscribe(subscriber, selector)
            owed = self._owed(subscriber, selector, after)
            # Events older than one the socket has: its offset cannot say where it got to.
            behind = after is not None and parse_event_id(after) < subscriber.sent_max
            await self.sessions.subscribed(subscriber, selector.names, after, replaying=behind)
            if after is not None:
                # History that cannot be read to its end (a backend down) cuts the socket:
                # its client reconnects and resumes, rather than going live past a gap.
                work = replay(
                    self.nexus.events,
                    self.fanout,
                    subscriber,
                    selector,
                    after,
                    owed=owed,
                    on_failure=partial(self.fanout.cut, subscriber),
                )
                subscriber.replay = asyncio.create_task(
                    self.sessions.replayed(subscriber, work) if behind else work
                )
        return {"ok": True, "subscribed": selector.names}

    async def _require_kept_after(self, after: str) -> None:
        """HistoryExpired (an `{ok: false}` ack) for a resume from before what retention
        keeps: answered `{ok: true}`, its replay would fail and cut the socket, and a
        client resuming from the same id again would never get back."""
        assert self.nexus is not None
        try:
            await self.nexus.events.history.require_kept_after(after)
        except HistoryExpired:
            raise
        except Exception:  # a backend down: the replay meets it too, and cuts
            pass  # the socket, which its client then resumes

    def _owed(self, subscriber: Subscriber, selector: TypeSelector, after: str | None) -> Owed:
        """What a subscribe owes the socket (with `after`: after it, for a name the socket
        has already, only up to where it was getting it anyway), noting from where it now
        gets each name."""
        start = parse_event_id(after) if after is not None else None
        spans: dict[str, Span] = {}
        for name in selector.names:
            had = subscriber.local_since.get(name)
            if start is None:
                if had is None:
                    subscriber.local_since[name] = parse_event_id(self.fanout.through)
                continue
            spans[name] = (start, had)
            subscriber.local_since[name] = start if had is None else min(had, start)
        return Owed.spans(spans)

    async def on_unsubscribe(self, sid: str, data: object = None) -> Ack:
        subscriber = self.registry.get(sid)
        if subscriber is None:
            return failure(NexusError("not connected"))
        try:
            selector, _ = parse_request(data)
        except NexusError as exc:
            return failure(exc)
        self.registry.unsubscribe(subscriber, selector)
        for name in selector.names:
            subscriber.local_since.pop(name, None)
        await self.sessions.unsubscribed(subscriber, selector.names)
        return {"ok": True, "unsubscribed": selector.names, "subscribed": subscriber.subscribed}

    async def on_ping(self, sid: str, *_: object) -> Ack:
        return {"pong": now_ms()}
