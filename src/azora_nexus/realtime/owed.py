"""Which events a replay owes a socket: per subscribed name, those in a span of ids.

A recovered socket is owed, per name, every event after the later of its offset and the id
the name was subscribed at. A socket that subscribes again with `after` to a name it already
has is owed only what it did not get through it: the events after `after` up to the point
from which it was getting them anyway (live, or from an earlier replay), so a client that
re-subscribes with `after` on every connect gets nothing twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from azora_nexus.events.envelope import Event, parse_event_id

Order = tuple[int, int]
# After the first id, up to and including the second (None: no end).
Span = tuple[Order, Order | None]


def id_of(order: Order) -> str:
    return f"{order[0]}-{order[1]}"


@dataclass(frozen=True, slots=True)
class Owed:
    """Spans of ids per exact type and per `domain.` prefix."""

    exact: Mapping[str, Span]
    prefixes: Mapping[str, Span]
    start: str  # a replay reads after this id (the lowest start)

    @classmethod
    def spans(cls, by_name: Mapping[str, Span], least: Order = (0, 0)) -> Owed:
        """From spans by subscribed name (`domain.*` patterns included)."""
        exact = {n: s for n, s in by_name.items() if not n.endswith(".*")}
        prefixes = {n[:-1]: s for n, s in by_name.items() if n.endswith(".*")}
        lowest = min((lo for lo, _ in by_name.values()), default=least)
        return cls(exact, prefixes, id_of(lowest))

    @classmethod
    def after(cls, since: Mapping[str, str], offset: str | None) -> Owed:
        """A recovery's: per name, everything after the later of `offset` and its `since`
        (Invalid for a bad id)."""
        least = parse_event_id(offset) if offset is not None else (0, 0)
        return cls.spans(
            {name: (max(parse_event_id(at), least), None) for name, at in since.items()}, least
        )

    def floors(self) -> dict[str, Order]:
        """Per subscribed name, the id after which the socket gets every event of it."""
        return {n: lo for n, (lo, _) in self.exact.items()} | {
            f"{p}*": lo for p, (lo, _) in self.prefixes.items()
        }

    def __call__(self, event: Event) -> bool:
        order = event.order
        span = self.exact.get(event.type)
        if span is not None and _within(order, span):
            return True
        return any(
            event.type.startswith(prefix) and _within(order, span)
            for prefix, span in self.prefixes.items()
        )


def _within(order: Order, span: Span) -> bool:
    low, high = span
    return order > low and (high is None or order <= high)
