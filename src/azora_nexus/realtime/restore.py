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
from dataclasses import dataclass

from azora_nexus.errors import NexusError
from azora_nexus.events.bus import EventBus
from azora_nexus.events.envelope import Event
from azora_nexus.events.taxonomy import TypeSelector
from azora_nexus.realtime.owed import Owed
from azora_nexus.realtime.recovery import SessionStore
from azora_nexus.realtime.replay import BATCH, filter_for
from azora_nexus.realtime.subscriptions import Registry, Subscriber

logger = logging.getLogger(__name__)


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
        # Unknown, expired, another user's, or it lost a replay half-way.
        if (
            saved is None
            or saved.replaying
            or not store.belongs(saved, pid, subscriber.principal.user_id)
        ):
            return None
        selector = TypeSelector.parse(saved.since) if saved.since else None
        owed = Owed.after(saved.since, offset)
    except NexusError as exc:  # a bad offset, a type no longer known
        logger.info("socket %s not recovered: %s", subscriber.sid, exc.message)
        return None
    except Exception as exc:
        logger.warning("socket %s not recovered: sessions unavailable (%s)", subscriber.sid, exc)
        return None
    subscriber.pid = pid
    subscriber.since = dict(saved.since)
    subscriber.local_since = owed.floors()
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
        subscriber.pid, subscriber.since, subscriber.local_since = "", {}, {}
        return None
    return Restored(selector, owed, first)
