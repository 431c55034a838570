"""Connection state recovery on this node: each socket's session, in step with its life.

recovery.py keeps the sessions in Redis and restore.py restores one; this module says when.
A socket that takes offsets gets a session on connect (the one it presents, restored, or a
new one), its subscribes and unsubscribes are noted before their ack, connected sockets'
sessions are kept from expiring, a lost transport leaves the session for the TTL, and a
socket closed on purpose loses it. A write that may have failed marks the socket `dirty`:
the keeping loop writes its session again whole.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

from azora_nexus.events.bus import EventBus
from azora_nexus.realtime.engine import SocketServer
from azora_nexus.realtime.fanout import Fanout
from azora_nexus.realtime.recovery import SessionStore, new_pid
from azora_nexus.realtime.replay import replay
from azora_nexus.realtime.restore import Restored, restore
from azora_nexus.realtime.subscriptions import Registry, Subscriber

if TYPE_CHECKING:
    from azora_nexus.nexus import Nexus

logger = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, None]], None]


class SessionKeeper:
    """The recovery sessions of this node's sockets (none while not serving, or with
    recovery off)."""

    def __init__(self, sio: SocketServer, registry: Registry, fanout: Fanout, spawn: Spawn) -> None:
        self.sio = sio
        self.registry = registry
        self.fanout = fanout
        self.spawn = spawn
        self.store: SessionStore | None = None  # while serving, with recovery on
        self.bus: EventBus | None = None
        # Restored sockets whose replay starts once their CONNECT is answered, by sid.
        self.restored: dict[str, Restored] = {}

    @asynccontextmanager
    async def serving(self, nexus: Nexus) -> AsyncIterator[None]:
        """Keep sessions in `nexus`'s Redis while the context lasts (unless the TTL is 0)."""
        store = SessionStore(
            nexus.redis, nexus.settings.socket_recovery_ttl_s, nexus.jwt_secret.encode()
        )
        if not store.enabled:
            yield
            return
        self.store, self.bus = store, nexus.events
        keeping = asyncio.create_task(self.keep(), name="socket sessions")
        try:
            yield
        finally:
            keeping.cancel()
            await asyncio.gather(keeping, return_exceptions=True)
            self.store = self.bus = None

    async def keep(self) -> None:
        """Keep the sessions of this node's sockets from expiring while they are
        connected, and write again whole those whose last write may have failed."""
        while self.store is not None:
            store = self.store
            await asyncio.sleep(store.refresh_s)
            try:
                kept = [s for s in self.registry.sockets.values() if s.since]
                for subscriber in [s for s in kept if s.dirty]:
                    await store.save(subscriber.pid, subscriber.principal.user_id, subscriber.since)
                    subscriber.dirty = False
                await store.keep([s.pid for s in kept])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("could not keep socket sessions (%s)", exc)

    async def open(self, subscriber: Subscriber, auth: object) -> None:
        """Restore the session the client presents (`pid`, `offset`), or give it a new one;
        the CONNECT answer carries its `pid`. Nothing for a client that takes no offsets."""
        if self.store is None or self.bus is None or not subscriber.offsets:
            return
        pid = auth.get("pid") if isinstance(auth, dict) else None
        offset = auth.get("offset") if isinstance(auth, dict) else None
        restored = None
        if isinstance(pid, str) and (offset is None or isinstance(offset, str)):
            restored = await restore(
                self.store, self.bus, self.registry, subscriber, pid=pid, offset=offset
            )
        if restored is None:
            subscriber.pid = new_pid()
        else:
            self.restored[subscriber.sid] = restored
        self.sio.connect_answers[subscriber.sid] = {"pid": subscriber.pid}

    async def on_connected(self, sid: str) -> None:
        """The CONNECT was answered: a restored socket's missed events go out now."""
        restored = self.restored.pop(sid, None)
        subscriber = self.registry.get(sid)
        if restored is None or subscriber is None or self.bus is None:
            return
        if not restored.selector.names:
            return
        subscriber.replay = asyncio.create_task(
            replay(
                self.bus,
                self.fanout,
                subscriber,
                restored.selector,
                restored.owed.start,
                first=restored.first,
                owed=restored.owed,
                on_failure=partial(self.fanout.cut, subscriber),
            )
        )

    def discard(self, sid: str) -> None:
        """The socket left before its restored replay started: it never will."""
        self.restored.pop(sid, None)

    def linger(self, subscriber: Subscriber) -> None:
        """The socket's transport was lost: the client may come back, here or elsewhere, so
        its session stays for the TTL."""
        if subscriber.since and self.store is not None:
            self.spawn(_quietly(self.store.linger(subscriber.pid)))

    def end(self, subscriber: Subscriber) -> None:
        """The socket was closed on purpose: a reconnect must not bring it back."""
        if subscriber.pid and self.store is not None:
            self.spawn(_quietly(self.store.forget(subscriber.pid)))

    async def subscribed(
        self, subscriber: Subscriber, names: Iterable[str], after: str | None, *, replaying: bool
    ) -> None:
        """Note new subscriptions in the socket's session before the ack: each is owed
        events after `after`, or after the last event handed out live before it."""
        if self.store is None or not subscriber.pid:
            return
        since = after if after is not None else self.fanout.through
        added = {name: since for name in names if name not in subscriber.since}
        if not added and not (replaying and subscriber.since):
            return
        subscriber.since.update(added)
        await _noted(
            subscriber,
            self.store.subscribe(
                subscriber.pid, subscriber.principal.user_id, added, replaying=replaying
            ),
        )

    async def replayed(self, subscriber: Subscriber, work: Awaitable[None]) -> None:
        """Run a replay that goes behind the socket's offset; then it is recoverable again."""
        await work
        if self.store is not None and subscriber.pid:
            await _noted(subscriber, self.store.replayed(subscriber.pid))

    async def unsubscribed(self, subscriber: Subscriber, names: Iterable[str]) -> None:
        """Take the names from the socket's session."""
        dropped = [name for name in names if subscriber.since.pop(name, None)]
        if dropped and self.store is not None:
            async with subscriber.lock:
                await _noted(subscriber, self.store.unsubscribe(subscriber.pid, dropped))


async def _noted(subscriber: Subscriber, write: Awaitable[None]) -> None:
    """A session write its caller waits for: a failure leaves the socket `dirty`."""
    try:
        await write
    except Exception as exc:
        logger.warning("socket %s: session not saved (%s)", subscriber.sid, exc)
        subscriber.dirty = True


async def _quietly(write: Awaitable[None]) -> None:
    """A session write nobody waits for: a failure is logged (the TTL cleans up)."""
    try:
        await write
    except Exception as exc:
        logger.warning("socket session write failed (%s)", exc)
