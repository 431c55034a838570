"""Every event type Nexus knows (CONTRACT.md's taxonomy), and subscriptions to them.

A subscription names exact types or `prefix.*` patterns (`education.*`,
`system.user.*`); a pattern must match at least one known type.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from azora_nexus.errors import Invalid


@dataclass(frozen=True, slots=True)
class EventType:
    """One type of the taxonomy: its name, its domain and what it means."""

    name: str
    meaning: str

    @property
    def domain(self) -> str:
        return self.name.split(".", 1)[0]


_TYPES = (
    EventType("education.course.enrolled", "a user enrolled in a course"),
    EventType("education.lesson.completed", "a user completed a lesson of a course"),
    EventType("education.assessment.submitted", "a user submitted an assessment"),
    EventType("education.certificate.issued", "a user completed a course and got its certificate"),
    EventType("finance.wallet.created", "a user opened a wallet in one currency"),
    EventType("finance.transaction.completed", "money moved between two wallets"),
    EventType("finance.mining.reward", "a wallet was credited from the mining pool"),
    EventType("finance.ubi.distributed", "a user was credited a basic income (one per user)"),
    EventType("finance.ubi.progress", "a UBI distribution's counts so far (at most ~1/s)"),
    EventType("finance.ubi.completed", "a UBI distribution paid every active user"),
    EventType("finance.ubi.failed", "a UBI distribution stopped for good; its error says why"),
    EventType("marketplace.job.posted", "a user posted a job"),
    EventType("marketplace.application.submitted", "a user applied to a job"),
    EventType("marketplace.contract.signed", "a poster accepted an application; escrow held"),
    EventType("marketplace.payment.released", "a poster released a contract's escrow"),
    EventType("system.user.registered", "a new user registered"),
    EventType("system.user.login", "a user signed in"),
    EventType("system.user.erased", "a user's personal data was erased"),
    EventType("system.alert", "an operational alert"),
    EventType("system.health.check", "a health check result"),
    # The sync layer invalidates Redis keys directly after commit and emits no events; a
    # cache/sync event it comes to emit is added here so that it is published and listed.
)

EVENT_TYPES: dict[str, EventType] = {t.name: t for t in _TYPES}


def require_known(name: str) -> EventType:
    """The taxonomy entry for `name`; Invalid when the type is unknown."""
    try:
        return EVENT_TYPES[name]
    except KeyError:
        raise Invalid(f"unknown event type {name!r}") from None


@dataclass(frozen=True, slots=True)
class TypeSelector:
    """A set of exact types and `prefix.*` patterns; matches a type that any of them names."""

    exact: frozenset[str]
    prefixes: frozenset[str]  # each ends with "." so `education.` never matches `educationx`
    given: tuple[str, ...] = ()  # as the client wrote them, in its order, without repeats

    @classmethod
    def parse(cls, names: Iterable[object]) -> TypeSelector:
        """A selector of known types and patterns; Invalid for anything else."""
        exact: set[str] = set()
        prefixes: set[str] = set()
        given: dict[str, None] = {}
        for name in names:
            if not isinstance(name, str):
                raise Invalid("event types must be strings")
            if name.endswith(".*"):
                prefix = name[:-1]
                if not any(t.startswith(prefix) for t in EVENT_TYPES):
                    raise Invalid(f"pattern {name!r} matches no known event type")
                prefixes.add(prefix)
            else:
                require_known(name)
                exact.add(name)
            given[name] = None
        return cls(frozenset(exact), frozenset(prefixes), tuple(given))

    @property
    def names(self) -> list[str]:
        """The selector as the client wrote it."""
        if self.given:
            return list(self.given)
        return sorted(self.exact) + sorted(f"{p}*" for p in self.prefixes)

    def matches(self, event_type: str) -> bool:
        return event_type in self.exact or any(event_type.startswith(p) for p in self.prefixes)

    def expand(self) -> list[str]:
        """Every known type this selector matches."""
        return [name for name in EVENT_TYPES if self.matches(name)]
