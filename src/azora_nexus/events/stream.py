"""The Redis stream `azora:events`: the bus every node appends to and tails.

Each entry holds the envelope body under `e` (and, when it came from the outbox, the
outbox row id under `o`); the entry id is the event id. The stream keeps about `maxlen`
entries; history beyond that lives in the Mongo archive, so the stream is never trimmed past
an entry the archiver has not acknowledged (the archive group's oldest pending or undelivered
entry): while MongoDB is down or the archiver lags, the stream grows instead of losing
events. Only past `hard_maxlen` entries (memory must stay bounded) do the oldest go anyway;
the newest such unarchived id is kept under `azora:events:unarchived`, and a history read
from before it answers `history_expired`, never a silent gap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from azora_nexus.events.audience import (
    INDEX_PREFIX,
    LUA_HELPERS,
    READ_VISIBLE,
    READY_KEY,
    audience_of,
    index_key,
    member,
    read_visible_args,
)
from azora_nexus.events.envelope import Event, NewEvent
from azora_nexus.metrics import NodeMetrics

STREAM_KEY = "azora:events"
# outbox id -> stream id of every outbox row appended but not yet marked in PostgreSQL.
RELAYED_KEY = "azora:events:relayed"
# The newest id trimmed before the archive had it (only past the hard cap).
UNARCHIVED_KEY = "azora:events:unarchived"
ARCHIVE_GROUP = "archive"
BACKLOG_CHUNK = 1000
HARD_MAXLEN_FACTOR = 10

# Trim the stream (KEYS[1]) toward `maxlen` entries, `step` at a time (so the trim's reads
# cost O(1) an append), and never past what the archive group has acknowledged, unless it
# holds more than `hard` entries: then the oldest go anyway, and the newest unarchived id
# among them is remembered in `lost` (events/history.py answers history_expired before it).
_TRIM = (
    f"local ARCHIVE_GROUP = '{ARCHIVE_GROUP}'\n"
    + """
local function archived_through(stream)
  -- The bound (an XRANGE end) below which the archive group acknowledged every entry.
  for _, flat in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    local group = {}
    for i = 1, #flat, 2 do group[flat[i]] = flat[i + 1] end
    if group['name'] == ARCHIVE_GROUP then
      if group['pending'] > 0 then
        return '(' .. redis.call('XPENDING', stream, group['name'])[2]
      end
      return group['last-delivered-id']
    end
  end
  return nil
end
local function trim(stream, lost, maxlen, step, hard)
  local len = redis.call('XLEN', stream)
  if len <= maxlen + step then return end
  local floor = archived_through(stream)
  local gone = redis.call('XRANGE', stream, '-', floor or '+', 'COUNT', len - maxlen)
  local last = gone[#gone] and gone[#gone][1]
  if floor and len - #gone > hard + step then
    -- Still past the hard cap: the oldest unarchived go too, down to the cap.
    local from = last and ('(' .. last) or '-'
    local more = redis.call('XRANGE', stream, from, '+', 'COUNT', len - #gone - hard)
    last = more[#more][1]
    redis.call('SET', lost, last)
  end
  if not last then return end
  local keep = redis.call('XRANGE', stream, '(' .. last, '+', 'COUNT', 1)[1][1]
  redis.call('XTRIM', stream, 'MINID', keep)
end
"""
)

# Appending a batch of outbox rows and remembering their stream ids happens in one atomic
# step, and a row already appended is never appended again: a relay that dies after XADD
# and before marking its rows (or a second relay racing the first) cannot publish twice.
# KEYS: stream, relayed, unarchived, then the rows' audience index keys in order. ARGV:
# maxlen, step, hard, then outbox id and body per row.
_APPEND_OUTBOX = (
    LUA_HELPERS
    + _TRIM
    + """
local ids = {}
for i = 4, #ARGV, 2 do
  local sid = redis.call('HGET', KEYS[2], ARGV[i])
  if not sid then
    sid = redis.call('XADD', KEYS[1], '*', 'e', ARGV[i + 1], 'o', ARGV[i])
    redis.call('HSET', KEYS[2], ARGV[i], sid)
    trim(KEYS[1], KEYS[3], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
    index(KEYS[1], KEYS[3 + (i - 2) / 2], sid)
  end
  ids[#ids + 1] = sid
end
return ids
"""
)

# One event: XADD, the trim and its audience index member, in one step (events/audience.py).
# KEYS: stream, audience index, unarchived. ARGV: maxlen, step, hard, body, nonce.
_APPEND = (
    LUA_HELPERS
    + _TRIM
    + """
local id
if ARGV[5] == '' then
  id = redis.call('XADD', KEYS[1], '*', 'e', ARGV[4])
else
  id = redis.call('XADD', KEYS[1], '*', 'e', ARGV[4], 'n', ARGV[5])
end
trim(KEYS[1], KEYS[3], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
index(KEYS[1], KEYS[2], id)
return id
"""
)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def decode_entry(entry_id: bytes | str, fields: dict[Any, Any] | None) -> Event | None:
    """The event of one stream entry; None for an entry trimmed away under a reader."""
    if not fields:
        return None
    body = fields.get(b"e", fields.get("e"))
    if body is None:
        return None
    return Event.decode(_text(entry_id), body)


def _fields(flat: Sequence[Any]) -> dict[Any, Any]:
    """A stream entry's fields as a script returns them (a flat list) as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def decode_entries(entries: Sequence[Any]) -> list[Event]:
    events = []
    for entry_id, fields in entries:
        event = decode_entry(entry_id, fields)
        if event is not None:
            events.append(event)
    return events


@dataclass(frozen=True)
class EventStream:
    """Appends to and reads from the event stream."""

    redis: Redis
    maxlen: int = 100_000
    hard_maxlen: int | None = None  # None: HARD_MAXLEN_FACTOR x maxlen
    key: str = STREAM_KEY
    relayed_key: str = RELAYED_KEY
    unarchived_key: str = UNARCHIVED_KEY
    metrics: NodeMetrics | None = None  # the node's, counting what it puts on the stream

    def _trim_args(self) -> list[int]:
        """maxlen, step and hard cap, as the append scripts take them."""
        hard = self.hard_maxlen or HARD_MAXLEN_FACTOR * self.maxlen
        return [self.maxlen, max(1, min(100, self.maxlen // 10)), max(hard, self.maxlen)]

    async def unarchived_through(self) -> str | None:
        """The newest id trimmed off the stream before the archive had it (None: none)."""
        found = await self.redis.get(self.unarchived_key)
        return None if found is None else _text(found)

    async def append(self, event: NewEvent, nonce: str | None = None) -> Event:
        """`event` on the stream, with the id the stream gave it (and `nonce` beside it, by
        which the relay recognises it should the caller not hear the answer)."""
        entry_id = await self.redis.eval(
            _APPEND,
            3,
            self.key,
            index_key(audience_of(event.user_id)),
            self.unarchived_key,
            *self._trim_args(),
            event.encode(),
            nonce or "",
        )
        if self.metrics is not None:
            self.metrics.events_published.labels(event.type).inc()
        return event.with_id(_text(entry_id))

    async def append_outbox(self, rows: Sequence[tuple[int, NewEvent]]) -> list[str]:
        """Stream ids of outbox rows `(outbox id, event)`, each appended at most once ever."""
        if not rows:
            return []
        args: list[Any] = self._trim_args()
        for outbox_id, event in rows:
            args.extend((outbox_id, event.encode()))
        audiences = [index_key(audience_of(event.user_id)) for _, event in rows]
        keys = [self.key, self.relayed_key, self.unarchived_key, *audiences]
        ids = await self.redis.eval(_APPEND_OUTBOX, len(keys), *keys, *args)
        if self.metrics is not None:
            for _, event in rows:
                self.metrics.events_published.labels(event.type).inc()
        return [_text(i) for i in ids]

    async def find_nonces(self, nonces: set[str], since_ms: int) -> dict[str, str]:
        """The stream ids of the entries carrying these nonces, from `since_ms` on."""
        found: dict[str, str] = {}
        start = f"{max(since_ms, 0)}-0"
        while len(found) < len(nonces):
            entries: Any = await self.redis.xrange(self.key, start, "+", count=1000)
            for entry_id, fields in entries:
                nonce = (fields or {}).get(b"n", (fields or {}).get("n"))
                if nonce is not None and _text(nonce) in nonces:
                    found[_text(nonce)] = _text(entry_id)
            if len(entries) < 1000:
                break
            start = f"({_text(entries[-1][0])}"
        return found

    async def forget_relayed(self, outbox_ids: Sequence[int]) -> None:
        """Drop the memory of rows PostgreSQL now records as published."""
        if outbox_ids:
            await self.redis.hdel(self.relayed_key, *[str(i) for i in outbox_ids])

    async def relayed_outbox_ids(self) -> list[int]:
        return [int(k) for k in await self.redis.hkeys(self.relayed_key)]

    async def read_after(self, after: str | None, count: int) -> list[Event]:
        """Up to `count` events after `after` (from the oldest when None), oldest first."""
        start = "-" if after is None else f"({after}"
        entries: Any = await self.redis.xrange(self.key, start, "+", count=count)
        return decode_entries(entries)

    async def window_after(self, after: str | None, count: int) -> tuple[str | None, list[Event]]:
        """The oldest id on the stream and up to `count` events after `after`, read atomically."""
        start = "-" if after is None else f"({after}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xrange(self.key, "-", "+", count=1)
            pipe.xrange(self.key, start, "+", count=count)
            oldest, entries = await pipe.execute()
        return (_text(oldest[0][0]) if oldest else None), decode_entries(entries)

    async def visible_after(
        self, audiences: Sequence[str], after: str | None, count: int
    ) -> tuple[str | None, list[Event]]:
        """The oldest id on the stream and up to `count` events of `audiences` after `after`,
        read atomically through the audience index (events/audience.py)."""
        if not audiences:
            return await self.first_id(), []
        oldest, entries = await self.redis.eval(
            READ_VISIBLE, *read_visible_args(self.key, audiences, after, count)
        )
        pairs = [(entry_id, _fields(flat)) for entry_id, flat in entries]
        return (_text(oldest) or None), decode_entries(pairs)

    async def index_backlog(self) -> int:
        """Put every entry already on the stream into the audience index, once (entries
        appended before the index existed have no member); how many were indexed."""
        if await self.audience_index_ready():
            return 0
        indexed = 0
        start = "-"
        while True:
            entries: Any = await self.redis.xrange(self.key, start, "+", count=BACKLOG_CHUNK)
            events = decode_entries(entries)
            if events:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for event in events:
                        pipe.zadd(index_key(audience_of(event.user_id)), {member(event.id): 0})
                    await pipe.execute()
            indexed += len(events)
            if len(entries) < BACKLOG_CHUNK:
                break
            start = f"({_text(entries[-1][0])}"
        await self.redis.set(READY_KEY, "1")
        return indexed

    async def trim_audience_index(self) -> None:
        """Drop the members below the stream's oldest entry from every audience's index
        (an append trims only its own audience's; this catches audiences gone quiet)."""
        oldest = await self.first_id()
        match = INDEX_PREFIX + "*"
        async for key in self.redis.scan_iter(match=match, count=BACKLOG_CHUNK):
            if oldest is None:
                await self.redis.delete(key)
            else:
                await self.redis.zremrangebylex(key, "-", f"({member(oldest)}")

    async def audience_index_ready(self) -> bool:
        """Whether every entry on the stream is in the audience index (events/audience.py)."""
        return bool(await self.redis.exists(READY_KEY))

    async def head(self) -> tuple[str | None, bool]:
        """The oldest id on the stream, and whether the stream still holds every event it
        was ever given (nothing trimmed or deleted, so the archive has nothing older).

        Servers before Redis 7 do not say; the stream then counts as trimmed.
        """
        try:
            info: Any = await self.redis.xinfo_stream(self.key)
        except ResponseError:  # no such key yet
            return None, True
        first = info.get("first-entry")
        first_id = _text(first[0]) if first else None
        added = info.get("entries-added")
        return first_id, added is not None and int(added) == int(info["length"])

    async def first_id(self) -> str | None:
        """The id of the oldest event still on the stream."""
        entries: Any = await self.redis.xrange(self.key, "-", "+", count=1)
        return _text(entries[0][0]) if entries else None

    async def last_id(self) -> str:
        """The newest id the stream ever gave ("0-0" when it has none)."""
        try:
            info = await self.redis.xinfo_stream(self.key)
        except ResponseError:  # no such key yet
            return "0-0"
        return _text(info["last-generated-id"])

    async def wait_after(self, after: str, *, block_ms: int, count: int) -> tuple[list[Event], str]:
        """Events after `after` (waiting up to `block_ms` for one), and the id read up to."""
        reply: Any = await self.redis.xread({self.key: after}, count=count, block=block_ms)
        if not reply or not reply[0][1]:
            return [], after
        entries = reply[0][1]
        return decode_entries(entries), _text(entries[-1][0])
