"""Restoring a recovering socket (recovery.py): its subscriptions, then every event it missed.

All or nothing: the session is loaded, the user checked, the subscriptions registered (live
events buffered from then on) and the first batch of missed events read before the CONNECT
is answered. If any of it fails (unknown or expired session, another user, history no
longer kept, a backend down), nothing is left of it and the socket gets a fresh session;
once answered, the replay goes on as a resume does (replay.py), and a socket whose replay
cannot be finished is cut, so that it recovers again from the offset it reached.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from azora_nexus.errors import NexusError
from azora_nexus.events.bus import EventBus
from azora_nexus.events.envelope import Event, parse_event_id
from azora_nexus.events.taxonomy import TypeSelector
from azora_nexus.realtime.recovery import SessionStore
from azora_nexus.realtime.replay import BATCH, filter_for
from azora_nexus.realtime.subscriptions import Registry, Subscriber

logger = logging.getLogger(__name__)

Order = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Owed:
    """The events a restored socket is owed: per subscribed name, those after its floor
    (the later of the client's offset and the id the name was subscribed at)."""

    exact: Mapping[str, Order]
    prefixes: Mapping[str, Order]
    start: str  # the replay reads after this id (the lowest floor)

    @classmethod
    def of(cls, since: Mapping[str, str], offset: str | None) -> Owed:
        """Floors from the session's `since` and the client's `offset` (Invalid if bad)."""
        least = parse_event_id(offset) if offset is not None else (0, 0)
        exact: dict[str, Order] = {}
        prefixes: dict[str, Order] = {}
        for name, subscribed_at in since.items():
            floor = max(parse_event_id(subscribed_at), least)
            if name.endswith(".*"):
                prefixes[name[:-1]] = floor
            else:
                exact[name] = floor
        lowest = min([*exact.values(), *prefixes.values()], default=least)
        return cls(exact, prefixes, f"{lowest[0]}-{lowest[1]}")

    def __call__(self, event: Event) -> bool:
        order = event.order
        floor = self.exact.get(event.type)
        if floor is not None and order > floor:
            return True
        return any(
            event.type.startswith(prefix) and order > floor
            for prefix, floor in self.prefixes.items()
        )


@dataclass(frozen=True, slots=True)
class Restored:
    """A restored socket's replay, to start once its CONNECT is answered."""

    selector: TypeSelector
    owed: Owed
    first: list[Event]


async def restore(
    store: SessionStore,
    bus: EventBus,
    registry: Registry,
    subscriber: Subscriber,
    *,
    pid: str,
    offset: str | None,
) -> Restored | None:
    """Restore `subscriber` (registered, without subscriptions) from session `pid` presented
    with `offset`; None, with the socket left as it was, when that cannot be done in full."""
    try:
        saved = await store.load(pid)
        if saved is None or not store.belongs(saved, pid, subscriber.principal.user_id):
            return None
        selector = TypeSelector.parse(saved.since) if saved.since else None
        owed = Owed.of(saved.since, offset)
    except NexusError as exc:  # a bad offset, a type no longer known
        logger.info("socket %s not recovered: %s", subscriber.sid, exc.message)
        return None
    except Exception as exc:
        logger.warning("socket %s not recovered: sessions unavailable (%s)", subscriber.sid, exc)
        return None
    subscriber.pid = pid
    subscriber.since = dict(saved.since)
    if selector is None:
        return Restored(TypeSelector(frozenset(), frozenset()), owed, [])
    # Live events wait from before the first read of history, as for a resume.
    subscriber.buffer = []
    registry.subscribe(subscriber, selector)
    try:
        first = await bus.read(owed.start, BATCH, filter_for(subscriber, selector))
    except Exception as exc:
        logger.info(
            "socket %s not recovered: history after %s (%s)", subscriber.sid, owed.start, exc
        )
        registry.unsubscribe(subscriber, selector)
        subscriber.buffer = None
        subscriber.pid, subscriber.since = "", {}
        return None
    return Restored(selector, owed, first)
