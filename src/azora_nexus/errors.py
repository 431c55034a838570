"""Errors Nexus raises on purpose; `api/errors.py` maps each to an HTTP status once.

* NexusError
  x BadRequest · Unauthorized · Forbidden · NotFound · PayloadTooLarge · RateLimited
  x Invalid (422)
  x HistoryExpired (410: a read from before what retention keeps)
  x Conflict
    + InsufficientFunds · CurrencyMismatch · DuplicateKey
  x BackendUnavailable · Overloaded (503 with Retry-After)
  x BackendStartError (a server could not be started; the CLI prints it as one line)
"""

from __future__ import annotations


class NexusError(Exception):
    """Base of every deliberate error; `code` is stable and goes on the wire."""

    code = "error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)

    @property
    def message(self) -> str:
        return str(self)


class BadRequest(NexusError):
    """The request is malformed."""

    code = "bad_request"


class Unauthorized(NexusError):
    """Missing or invalid credentials."""

    code = "unauthorized"


class Forbidden(NexusError):
    """The caller may not do this."""

    code = "forbidden"


class NotFound(NexusError):
    """No such object."""

    code = "not_found"


class PayloadTooLarge(NexusError):
    """The body is larger than allowed."""

    code = "payload_too_large"


class RateLimited(NexusError):
    """Too many attempts; try again later."""

    code = "rate_limited"

    def __init__(self, message: str | None = None, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        # Sent as Retry-After (whole seconds, rounded up) when known.
        self.retry_after_s = retry_after_s


class Invalid(NexusError):
    """The input is well-formed but not acceptable."""

    code = "invalid"


class HistoryExpired(NexusError):
    """Events after the given id are no longer kept; read again without `after`."""

    code = "history_expired"


class Conflict(NexusError):
    """The request conflicts with the current state."""

    code = "conflict"


class InsufficientFunds(Conflict):
    """The wallet's balance does not cover the amount."""

    code = "insufficient_funds"


class CurrencyMismatch(Conflict):
    """The wallets hold different currencies."""

    code = "currency_mismatch"


class DuplicateKey(Conflict):
    """An object with this unique key exists already."""

    code = "duplicate"


class BackendUnavailable(NexusError):
    """A backend (PostgreSQL, Redis or MongoDB) did not answer in time."""

    code = "backend_unavailable"


class Overloaded(NexusError):
    """This node has too much of this work queued; try again shortly."""

    code = "overloaded"

    def __init__(self, message: str | None = None, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class BackendStartError(NexusError):
    """An embedded backend could not be started."""

    code = "backend_start_failed"
