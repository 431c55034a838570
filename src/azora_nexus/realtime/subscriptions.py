"""Each socket's subscriptions, indexed by type and by pattern so an event finds its sockets."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from azora_nexus.auth.tokens import Principal
from azora_nexus.events.envelope import Event
from azora_nexus.events.taxonomy import TypeSelector
from azora_nexus.metrics import NodeMetrics
from azora_nexus.realtime.audience import may_receive


@dataclass(frozen=True, slots=True)
class ReplayWindow:
    """Events of `selector` up to `until` that a live delivery must not repeat.

    Those after the replay's `after` were replayed; those up to it the client already has
    (a lagging tailer may still bring any of them by).
    """

    selector: TypeSelector
    until: tuple[int, int]

    def covers(self, event: Event) -> bool:
        return event.order <= self.until and self.selector.matches(event.type)


@dataclass(eq=False)
class Subscriber:
    """One connected socket: who it is, what it wants, and its replay state."""

    sid: str
    eio_sid: str
    principal: Principal
    # When the socket's token expires (seconds since the epoch): it is closed then.
    expires_at_s: int = 0
    exact: set[str] = field(default_factory=set)
    prefixes: set[str] = field(default_factory=set)
    # While a replay runs, live events wait here so that none is lost or sent out of turn.
    buffer: list[Event] | None = None
    windows: list[ReplayWindow] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    replay: asyncio.Task[None] | None = None
    # The newest live event this socket was handed: one seen again (a batch the fan-out
    # got twice, as when a listener is re-attached behind its tailer) is not sent again.
    last_live: tuple[int, int] = (0, 0)
    # Connection state recovery (recovery.py): the session's private id, and per subscribed
    # name the id it is owed events after, as kept in Redis (empty: nothing kept yet);
    # `dirty` when a write of it may have failed (the node writes it whole again).
    pid: str = ""
    # False for a client that cannot recover (clients.py): its events carry no offset.
    offsets: bool = True
    since: dict[str, str] = field(default_factory=dict)
    dirty: bool = False
    # Per subscribed name, the id after which this socket gets every event of it (live or
    # replayed): a subscribe again with `after` owes it only what came before (owed.py).
    local_since: dict[str, tuple[int, int]] = field(default_factory=dict)
    # The newest event id sent to this socket: a replayed older event carries it as its
    # offset, so the client's offset never goes back (recovery.py).
    sent_max: tuple[int, int] = (0, 0)

    @property
    def subscribed(self) -> list[str]:
        return sorted(self.exact) + sorted(f"{p}*" for p in self.prefixes)

    def admit(self, event: Event, order: tuple[int, int]) -> bool:
        """Whether a live event (of id `order`) should go out now: not buffered, not sent."""
        if order <= self.last_live:
            return False
        self.last_live = order
        if self.buffer is not None:
            self.buffer.append(event)
            return False
        if self.windows and self.already_replayed(event):
            return False
        self.sent_max = order  # live events come in id order
        return True

    def already_replayed(self, event: Event) -> bool:
        if not self.windows:
            return False
        sent = any(w.covers(event) for w in self.windows)
        # Live events arrive in id order: a window this event has passed is done with.
        self.windows = [w for w in self.windows if event.order < w.until]
        return sent


class Registry:
    """Every socket of this node and the indexes from types and patterns to sockets."""

    def __init__(self) -> None:
        self.sockets: dict[str, Subscriber] = {}
        self.by_type: defaultdict[str, set[Subscriber]] = defaultdict(set)
        self.by_prefix: defaultdict[str, set[Subscriber]] = defaultdict(set)
        self.metrics: NodeMetrics | None = None  # the node's, set while it serves
        self.per_user: Counter[str] = Counter()  # sockets by user id

    def add(self, subscriber: Subscriber) -> None:
        self.sockets[subscriber.sid] = subscriber
        self.per_user[subscriber.principal.user_id] += 1
        if self.metrics is not None:
            self.metrics.sockets_connected.inc()

    def get(self, sid: str) -> Subscriber | None:
        return self.sockets.get(sid)

    def remove(self, sid: str) -> Subscriber | None:
        subscriber = self.sockets.pop(sid, None)
        if subscriber is not None:
            user_id = subscriber.principal.user_id
            self.per_user[user_id] -= 1
            if self.per_user[user_id] <= 0:
                del self.per_user[user_id]
            if self.metrics is not None:
                self.metrics.sockets_connected.dec()
            self.unsubscribe(
                subscriber,
                TypeSelector(frozenset(subscriber.exact), frozenset(subscriber.prefixes)),
            )
        return subscriber

    def subscribe(self, subscriber: Subscriber, selector: TypeSelector) -> None:
        for name in selector.exact:
            subscriber.exact.add(name)
            self.by_type[name].add(subscriber)
        for prefix in selector.prefixes:
            subscriber.prefixes.add(prefix)
            self.by_prefix[prefix].add(subscriber)

    def unsubscribe(self, subscriber: Subscriber, selector: TypeSelector) -> None:
        for index, keys, own in (
            (self.by_type, selector.exact, subscriber.exact),
            (self.by_prefix, selector.prefixes, subscriber.prefixes),
        ):
            for key in keys:
                own.discard(key)
                members = index.get(key)
                if members is not None:
                    members.discard(subscriber)
                    if not members:
                        del index[key]

    def recipients(self, event: Event) -> list[Subscriber]:
        """The sockets that subscribed to the event's type and may receive it."""
        exact = self.by_type.get(event.type)
        # A copy either way: a socket dropped during the fan-out leaves the index.
        found = list(exact) if exact else []
        if self.by_prefix:
            matched = set(found)
            parts = event.type.split(".")
            for end in range(1, len(parts)):
                matched.update(self.by_prefix.get(".".join(parts[:end]) + ".", ()))
            found = list(matched)
        if event.user_id is None:
            return found  # public: anyone may receive it
        return [s for s in found if may_receive(s.principal, event)]
