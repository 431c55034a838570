"""Connection state recovery: each socket's session, kept in Redis under a private id.

Socket.IO v4.6+ (socket.io-client's `socket.recovered`): the CONNECT answer gives the socket
a private session id (`pid`), every event packet carries the event's id as its last argument
(the client keeps the last one as its `offset`), and a reconnect presents `{pid, offset}`.
Here the session is a Redis hash, so a reconnect is restored on any worker of any node, and
after every node was restarted: who the socket is (its user) and, per subscribed type or
pattern, the id of the last event it could not have been sent live (the stream's position
at that subscribe, or its `after`). A client with no offset yet (no event before the drop)
is owed every event after those. The user is kept as an HMAC of the pid and the user id
(keyed with the node's secret), never the id itself: a reconnect must present a token of
the same user, and Redis holds nothing that names the user (an erased one included).

The hash expires `ttl_s` (plus one refresh period) after the socket was last seen: each
node refreshes the hashes of its connected sockets every period, so a node killed with -9
leaves its sockets recoverable for at least `ttl_s`. A socket that never subscribed has
nothing to recover and writes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

PREFIX = "azora:socket:"
USER = "user"  # the session's binding to its user (`SessionStore.binding`)
# Set while a replay sends the socket events older than others it has (a subscribe with
# `after`): its offset then says too little, and a reconnect meanwhile is a fresh connect.
REPLAYING = "replaying"
TYPE = "t:"  # a subscribed type or pattern: `t:education.*` -> the id it is owed events after
# A pid: 24 URL-safe characters, 144 random bits; anything else presented is ignored.
PID = re.compile(r"[A-Za-z0-9_-]{24}")
# How many sockets' expiries one round trip refreshes.
REFRESH_CHUNK = 1000


def new_pid() -> str:
    """A private session id nobody can guess."""
    return secrets.token_urlsafe(18)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def session_key(pid: str) -> str:
    return PREFIX + pid


@dataclass(frozen=True, slots=True)
class SavedSession:
    """A socket's session as kept: its binding to its user, and per subscribed name the id
    it is owed events after (when the client presents no later offset)."""

    binding: str
    since: Mapping[str, str]
    replaying: bool = False


class SessionStore:
    """Sessions in Redis, kept `ttl_s` after their socket was last seen."""

    def __init__(self, redis: Redis, ttl_s: float, key: bytes) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self.key = key
        # Connected sockets' hashes are refreshed this often; each write gives a hash this
        # period on top of the TTL, so it outlives its socket by at least `ttl_s`.
        self.refresh_s = max(1.0, min(60.0, ttl_s / 2))

    def binding(self, pid: str, user_id: str) -> str:
        """What ties session `pid` to its user, without naming the user."""
        message = f"azora socket session\0{pid}\0{user_id}".encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    def belongs(self, saved: SavedSession, pid: str, user_id: str) -> bool:
        """Whether the session `saved` (of `pid`) is `user_id`'s."""
        return hmac.compare_digest(saved.binding, self.binding(pid, user_id))

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0

    @property
    def _expiry_ms(self) -> int:
        return int((self.ttl_s + self.refresh_s) * 1000)

    async def load(self, pid: str) -> SavedSession | None:
        """The session of `pid`, or None when unknown or expired."""
        if PID.fullmatch(pid) is None:
            return None
        fields = {
            _text(name): _text(value)
            for name, value in (await self.redis.hgetall(session_key(pid))).items()
        }
        user = fields.pop(USER, None)
        if user is None:
            return None
        since = {
            name[len(TYPE) :]: value for name, value in fields.items() if name.startswith(TYPE)
        }
        return SavedSession(user, since, REPLAYING in fields)

    async def subscribe(
        self, pid: str, user_id: str, since: Mapping[str, str], *, replaying: bool = False
    ) -> None:
        """Note newly subscribed names, each owed events after its id (and, `replaying`,
        that the session cannot be recovered until `replayed`)."""
        mapping: dict[FieldT, EncodableT] = {USER: self.binding(pid, user_id)}
        mapping |= {TYPE + name: value for name, value in since.items()}
        if replaying:
            mapping[REPLAYING] = "1"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(session_key(pid), mapping=mapping)
            pipe.pexpire(session_key(pid), self._expiry_ms)
            await pipe.execute()

    async def save(self, pid: str, user_id: str, since: Mapping[str, str]) -> None:
        """Write the whole session again (after a write that may or may not have landed)."""
        mapping: dict[FieldT, EncodableT] = {USER: self.binding(pid, user_id)}
        mapping |= {TYPE + name: value for name, value in since.items()}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(session_key(pid))
            pipe.hset(session_key(pid), mapping=mapping)
            pipe.pexpire(session_key(pid), self._expiry_ms)
            await pipe.execute()

    async def replayed(self, pid: str) -> None:
        """The replay that made the session unrecoverable is done."""
        await self.redis.hdel(session_key(pid), REPLAYING)

    async def unsubscribe(self, pid: str, names: Iterable[str]) -> None:
        fields = [TYPE + name for name in names]
        if fields:
            await self.redis.hdel(session_key(pid), *fields)

    async def forget(self, pid: str) -> None:
        """The socket will not come back (it left, or was closed on purpose)."""
        await self.redis.delete(session_key(pid))

    async def linger(self, pid: str) -> None:
        """The socket's transport was lost: keep its session exactly `ttl_s` from now."""
        await self.redis.pexpire(session_key(pid), int(self.ttl_s * 1000))

    async def keep(self, pids: list[str]) -> None:
        """Push back the expiry of connected sockets' sessions (one pipeline per chunk)."""
        for start in range(0, len(pids), REFRESH_CHUNK):
            async with self.redis.pipeline(transaction=False) as pipe:
                for pid in pids[start : start + REFRESH_CHUNK]:
                    pipe.pexpire(session_key(pid), self._expiry_ms)
                await pipe.execute()
