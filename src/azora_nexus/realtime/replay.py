"""Resume after an id: stored events first, then live ones, with no gap and no repeat.

The socket's live events are buffered from before the first read of history; the replay
reads history to its end, then sends the buffered events it has not already sent and
switches the socket to live. The window it covered stays with the socket so that a live
event the tailer has not reached yet is not sent twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from azora_nexus.events.bus import EventBus
from azora_nexus.events.envelope import Event, parse_event_id
from azora_nexus.events.history import EventFilter
from azora_nexus.events.taxonomy import TypeSelector
from azora_nexus.realtime.audience import visible_only_to
from azora_nexus.realtime.fanout import Fanout
from azora_nexus.realtime.subscriptions import ReplayWindow, Subscriber

logger = logging.getLogger(__name__)

BATCH = 1000


async def replay(
    bus: EventBus,
    fanout: Fanout,
    subscriber: Subscriber,
    selector: TypeSelector,
    after: str,
    *,
    first: list[Event] | None = None,
    owed: Callable[[Event], bool] | None = None,
    on_failure: Callable[[], None] | None = None,
) -> None:
    """Send `subscriber` every stored event of `selector` after `after`, then go live.

    `first` is the first batch when the caller has read it already (a recovery reads it
    before answering the CONNECT, so that history it cannot have means a fresh connect);
    `owed` skips events the socket is not owed; `on_failure` replaces going live when
    history cannot be read to its end (a recovered socket is cut and recovers again).
    """
    events_filter = filter_for(subscriber, selector)
    cursor = after
    try:
        while True:
            batch = first if first is not None else await bus.read(cursor, BATCH, events_filter)
            first = None
            for event in batch:
                if owed is None or owed(event):
                    await fanout.send(subscriber, event)
            if batch:
                cursor = batch[-1].id
            if len(batch) < BATCH:
                break
    except asyncio.CancelledError:
        subscriber.buffer = None
        raise
    except Exception:
        logger.exception("replay for socket %s failed after %s", subscriber.sid, cursor)
        if on_failure is not None:
            subscriber.buffer = None
            on_failure()
            return
    subscriber.windows.append(ReplayWindow(selector, parse_event_id(cursor)))
    await _go_live(fanout, subscriber)


def filter_for(subscriber: Subscriber, selector: TypeSelector) -> EventFilter:
    """What a replay of `selector` to `subscriber` reads: only events it may see."""
    return EventFilter(types=selector, viewer=visible_only_to(subscriber.principal))


async def _go_live(fanout: Fanout, subscriber: Subscriber) -> None:
    while subscriber.buffer:
        pending, subscriber.buffer = subscriber.buffer, []
        for event in pending:
            if not subscriber.already_replayed(event):
                await fanout.send(subscriber, event)
    subscriber.buffer = None
