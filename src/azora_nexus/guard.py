"""Fail fast on a backend that does not answer: one circuit breaker per backend.

Every client of PostgreSQL, Redis and MongoDB that a request uses is bounded in time
(`AZORA_BACKEND_TIMEOUT_S`: pool acquire, connect, statement or socket), and reports its
failures here. The first failure opens the backend's breaker; from then on every call that
needs the backend is refused at once with `BackendUnavailable` naming it (503
`backend_unavailable`), instead of each request waiting out its own timeout. While open,
one probe every `AZORA_BACKEND_RETRY_S` (a real round trip on a connection of its own)
asks whether the backend is back, and the first answer closes the breaker: recovery needs
no restart and no request traffic.

What counts as a failure is an outage, not an answer: a timeout, a refused or dropped
connection. A constraint violation or a bad query is the caller's business.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from azora_nexus.errors import BackendUnavailable

logger = logging.getLogger(__name__)
T = TypeVar("T")

POSTGRES = "postgres"
REDIS = "redis"
MONGO = "mongo"

Probe = Callable[[], Awaitable[object]]


class Guard:
    """The breaker of one backend: closed → open on a failure → closed when a probe answers."""

    def __init__(
        self,
        name: str,
        *,
        timeout_s: float = 2.0,
        retry_s: float = 1.0,
        probe: Probe | None = None,
        on_recovery: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        unavailable: type[BackendUnavailable] = BackendUnavailable,
    ) -> None:
        self.name = name
        self.unavailable = unavailable  # what a refusal raises
        self.timeout_s = timeout_s
        self.retry_s = retry_s
        self.probe = probe
        self.on_recovery = on_recovery
        self._clock = clock
        self.opened_at: float | None = None
        self.reason = ""
        self.trips = 0
        self._prober: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None

    @property
    def state(self) -> str:
        return "open" if self.is_open else "closed"

    def check(self) -> None:
        """Raise `BackendUnavailable` at once while the breaker is open."""
        if self.opened_at is not None:
            raise self.unavailable(self.refusal())

    def refusal(self) -> str:
        since = 0.0 if self.opened_at is None else self._clock() - self.opened_at
        return f"{self.name} is unavailable ({self.reason}; for {since:.1f} s)"

    def failed(self, exc: BaseException | str) -> None:
        """Open the breaker (an outage was seen) and start probing for the backend's return."""
        if self._closed:
            return
        reason = exc if isinstance(exc, str) else describe(exc)
        if self.opened_at is None:
            self.trips += 1
            self.opened_at = self._clock()
            self.reason = reason
            logger.warning(
                "%s did not answer (%s): failing fast, probing every %.1f s",
                self.name,
                reason,
                self.retry_s,
            )
        self._start_probing()

    def recovered(self) -> None:
        if self.opened_at is not None:
            logger.info(
                "%s answers again after %.1f s: breaker closed",
                self.name,
                self._clock() - self.opened_at,
            )
        self.opened_at = None
        self.reason = ""

    @contextlib.asynccontextmanager
    async def guarded(self, timeout_s: float | None = None) -> AsyncIterator[None]:
        """Run the body only while the breaker is closed, within the deadline; a timeout or
        a lost connection opens the breaker and surfaces as `BackendUnavailable`."""
        self.check()
        try:
            async with asyncio.timeout(self.timeout_s if timeout_s is None else timeout_s):
                yield
        except BackendUnavailable:
            raise
        except Exception as exc:
            if not is_outage(exc):
                raise
            self.failed(exc)
            raise self.unavailable(f"{self.name} did not answer: {describe(exc)}") from exc

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        async with self.guarded():
            return await operation()

    def _start_probing(self) -> None:
        if self.probe is None or (self._prober is not None and not self._prober.done()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._prober = loop.create_task(self._probe_until_back(), name=f"{self.name} probe")

    async def _probe_until_back(self) -> None:
        assert self.probe is not None
        while self.opened_at is not None:
            await asyncio.sleep(self.retry_s)
            try:
                async with asyncio.timeout(self.timeout_s):
                    await self.probe()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.reason = describe(exc)
                continue
            if self.on_recovery is not None:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(self.timeout_s):
                        await self.on_recovery()
            self.recovered()

    async def aclose(self) -> None:
        self._closed = True
        if self._prober is not None:
            self._prober.cancel()
            await asyncio.gather(self._prober, return_exceptions=True)


@dataclass
class Guards:
    """The breakers of one node, by backend."""

    postgres: Guard
    redis: Guard
    mongo: Guard
    all: dict[str, Guard] = field(init=False)

    def __post_init__(self) -> None:
        self.all = {g.name: g for g in (self.postgres, self.redis, self.mongo)}

    @classmethod
    def create(cls, timeout_s: float, retry_s: float) -> Guards:
        from redis.exceptions import ConnectionError as RedisConnectionError

        class RedisUnavailable(BackendUnavailable, RedisConnectionError):
            """Redis is unavailable; also a redis-py ConnectionError, for the callers that
            handle those (the relay, the tailer)."""

        return cls(
            Guard(POSTGRES, timeout_s=timeout_s, retry_s=retry_s),
            Guard(REDIS, timeout_s=timeout_s, retry_s=retry_s, unavailable=RedisUnavailable),
            Guard(MONGO, timeout_s=timeout_s, retry_s=retry_s),
        )

    async def aclose(self) -> None:
        await asyncio.gather(*(g.aclose() for g in self.all.values()))


# What is an outage, and whose --------------------------------------------------------------
def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's
        if isinstance(orig, BaseException) and id(orig) not in seen:
            yield from _chain(orig)
        current = current.__cause__ or current.__context__


def _module(exc: BaseException) -> str:
    return type(exc).__module__ or ""


_DRIVERS = {"asyncpg": POSTGRES, "sqlalchemy": POSTGRES, "redis": REDIS, "pymongo": MONGO}


def _raised_in_driver(exc: BaseException) -> str | None:
    """The backend whose driver raised a plain TimeoutError or OSError (asyncpg's timeouts
    reach the caller as the builtin TimeoutError): the innermost frame of a driver or of
    Nexus decides, the standard library's frames (asyncio, contextlib) do not."""
    modules = []
    traceback = exc.__traceback__
    while traceback is not None:
        modules.append(str(traceback.tb_frame.f_globals.get("__name__", "")))
        traceback = traceback.tb_next
    for module in reversed(modules):
        package = module.split(".", 1)[0]
        if package in _DRIVERS:
            return _DRIVERS[package]
        if package == "azora_nexus":
            return None
    return None


def backend_of(exc: BaseException) -> str | None:
    """The backend whose outage `exc` is, or None when it is not an outage."""
    for link in _chain(exc):
        if isinstance(link, OSError) and _module(link) == "builtins":
            backend = _raised_in_driver(link)
            if backend is not None:
                return backend
            continue
        module = _module(link)
        if isinstance(link, BackendUnavailable):
            return next((n for n in (POSTGRES, REDIS, MONGO) if link.message.startswith(n)), None)
        if module.startswith("redis"):
            return REDIS if _redis_outage(link) else None
        if module.startswith("pymongo"):
            return MONGO if _mongo_outage(link) else None
        if module.startswith(("asyncpg", "sqlalchemy")) and _postgres_outage(link):
            return POSTGRES
    return None


def is_outage(exc: BaseException) -> bool:
    """A timeout or a lost connection, in whatever driver's words."""
    for link in _chain(exc):
        if isinstance(link, (TimeoutError, ConnectionError, BackendUnavailable)):
            return True
        if isinstance(link, OSError) and not isinstance(link, FileNotFoundError):
            return True
        module = _module(link)
        if module.startswith("redis") and _redis_outage(link):
            return True
        if module.startswith("pymongo") and _mongo_outage(link):
            return True
        if module.startswith(("asyncpg", "sqlalchemy")) and _postgres_outage(link):
            return True
    return False


def _redis_outage(exc: BaseException) -> bool:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return isinstance(exc, (RedisConnectionError, RedisTimeoutError))


def _mongo_outage(exc: BaseException) -> bool:
    from pymongo.errors import ConnectionFailure, ExecutionTimeout, WTimeoutError

    return isinstance(exc, (ConnectionFailure, ExecutionTimeout, WTimeoutError))


def _postgres_outage(exc: BaseException) -> bool:
    import asyncpg
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection within the deadline
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(
        exc,
        (
            asyncpg.exceptions.ConnectionDoesNotExistError,
            asyncpg.exceptions.CannotConnectNowError,
            asyncpg.exceptions.AdminShutdownError,
            asyncpg.exceptions.CrashShutdownError,
            asyncpg.exceptions.ConnectionFailureError,
            asyncpg.exceptions.TooManyConnectionsError,
        ),
    ) or (isinstance(exc, asyncpg.exceptions.InterfaceError) and "closed" in str(exc))


def describe(exc: BaseException) -> str:
    """A short reason: the outermost error that says something, its type and first line."""
    for link in _chain(exc):
        if isinstance(link, asyncio.CancelledError) or _module(link).startswith("sqlalchemy"):
            continue
        text = str(link).strip().splitlines()[0] if str(link).strip() else ""
        if isinstance(link, TimeoutError) and not text:
            text = "no answer in time"
        return f"{type(link).__name__}: {text}" if text else type(link).__name__
    return type(exc).__name__


@contextlib.contextmanager
def reported(guard: Guard) -> Iterator[None]:
    """Report an outage seen in the body to `guard` (and let the error through)."""
    try:
        yield
    except Exception as exc:
        if is_outage(exc):
            guard.failed(exc)
        raise


def log_failure(log: logging.Logger, what: str, exc: BaseException, retry_s: float) -> None:
    """One line for an outage (it is expected, and the breaker says the rest); the whole
    traceback for anything else."""
    if is_outage(exc):
        log.warning("%s: %s; retrying in %.1f s", what, describe(exc), retry_s)
    else:
        log.error("%s failed; retrying in %.1f s", what, retry_s, exc_info=exc)
