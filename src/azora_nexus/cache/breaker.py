"""A circuit breaker for Redis: after a failure, skip Redis until one probe succeeds.

Without it every request of an outage would wait out its own socket timeout; with it only
the request that finds Redis gone pays, the rest go straight to PostgreSQL, and one probe
per `retry_s` asks Redis whether it is back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum


class CacheUnavailable(Exception):
    """Redis is not usable right now; the caller answers from the database instead."""


class Admission(Enum):
    NORMAL = "normal"  # the breaker is closed
    PROBE = "probe"  # the one call that tests whether Redis is back


class Breaker:
    """Closed → open on any failure → after `retry_s`, one probe → closed when it succeeds."""

    def __init__(self, retry_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.retry_s = retry_s
        self._clock = clock
        self._opened_at: float | None = None
        self._probing = False
        self.trips = 0

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "half-open" if self._probing else "open"

    @property
    def is_closed(self) -> bool:
        return self._opened_at is None

    def admit(self) -> Admission | None:
        """How a call may use Redis now, or None when it must not."""
        if self._opened_at is None:
            return Admission.NORMAL
        if self._probing or self._clock() - self._opened_at < self.retry_s:
            return None
        self._probing = True
        return Admission.PROBE

    def succeeded(self, admission: Admission) -> None:
        # Only the probe closes the breaker: a call admitted before the outage that happens
        # to finish after it proves nothing about Redis now.
        if admission is Admission.PROBE:
            self._opened_at = None
            self._probing = False

    def failed(self, admission: Admission) -> None:
        if self._opened_at is None:
            self.trips += 1
        self._opened_at = self._clock()
        if admission is Admission.PROBE:
            self._probing = False
