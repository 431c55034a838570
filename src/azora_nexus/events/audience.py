"""Who may see an event, as keys: the audience index beside the stream and the archive.

An event is public (audience `*`) or concerns one user (audience `u:<userId>`). A caller
that is not an admin sees the public audience and its own; a `userId=` read sees that
user's. History reads such a view from indexes, never by scanning everyone's events:

- On the stream, a sorted set per audience (`azora:events:aud:<audience>`) holds the ids of
  that audience's entries, as fixed-width members (`<ms:020>-<seq:020>`) so that their lex
  order is the ids' order. Every append adds its member in the same script as the XADD and
  drops the members below the stream's oldest entry; reading one page of a view is one
  script: a few ZRANGEBYLEX and one XRANGE per event returned.
- In the archive, each document carries `aud` and `(aud, ms, seq)` is indexed.

Members only name ids (no personal data), and one that names an entry gone from the stream
(trimmed, erased) is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from azora_nexus.events.envelope import parse_event_id

PUBLIC = "*"
INDEX_PREFIX = "azora:events:aud:"
# Set once every stream entry written before the index existed has been indexed.
READY_KEY = "azora:events:aud-ready"


def audience_of(user_id: str | None) -> str:
    """The audience of an event concerning `user_id` (None: a public event)."""
    return PUBLIC if user_id is None else f"u:{user_id}"


def index_key(audience: str) -> str:
    return INDEX_PREFIX + audience


def member(event_id: str) -> str:
    """The index member of an event id: both numbers zero-padded, so lex order is id order."""
    ms, seq = parse_event_id(event_id)
    return f"{ms:020d}-{seq:020d}"


@dataclass(frozen=True, slots=True)
class Audiences:
    """The audiences a read may see; `everyone` when it may see all events."""

    keys: tuple[str, ...] = ()
    everyone: bool = True

    @classmethod
    def of(cls, *, viewer: str | None, user_id: str | None) -> Audiences:
        """What a reader (`viewer` None: sees all) asking for `user_id`'s events may see."""
        if user_id is not None:
            if viewer is not None and viewer != user_id:
                return cls(keys=(), everyone=False)  # someone else's: nothing
            return cls(keys=(audience_of(user_id),), everyone=False)
        if viewer is not None:
            return cls(keys=(PUBLIC, audience_of(viewer)), everyone=False)
        return cls()


# Lua helpers shared by the scripts: the padded member of an id, and the id of a member.
LUA_HELPERS = """
local function pad(id)
  local dash = string.find(id, '-', 1, true)
  local ms, seq = string.sub(id, 1, dash - 1), string.sub(id, dash + 1)
  return string.rep('0', 20 - #ms) .. ms .. '-' .. string.rep('0', 20 - #seq) .. seq
end
local function unpad(m)
  local ms = string.gsub(string.sub(m, 1, 20), '^0+', '')
  local seq = string.gsub(string.sub(m, 22), '^0+', '')
  if ms == '' then ms = '0' end
  if seq == '' then seq = '0' end
  return ms .. '-' .. seq
end
-- Index `id` under `key`, and forget the members below the stream's oldest entry.
local function index(stream, key, id)
  redis.call('ZADD', key, 0, pad(id))
  local oldest = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)
  if oldest[1] then
    redis.call('ZREMRANGEBYLEX', key, '-', '(' .. pad(oldest[1][1]))
  end
end
"""

# KEYS: stream, then the audience index keys to read. ARGV: the member to read after ('' for
# the start), how many events at most. Returns the stream's oldest id ('' when empty) and
# up to that many entries of those audiences, in id order, read atomically.
READ_VISIBLE = (
    LUA_HELPERS
    + """
local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if not oldest[1] then return {'', {}} end
local first = pad(oldest[1][1])
local from
if ARGV[1] == '' or ARGV[1] < first then from = '[' .. first else from = '(' .. ARGV[1] end
local count = tonumber(ARGV[2])
local found = {}
while #found < count do
  local members = {}
  local more = false
  for i = 2, #KEYS do
    local got = redis.call('ZRANGEBYLEX', KEYS[i], from, '+', 'LIMIT', 0, count)
    if #got == count then more = true end
    for _, m in ipairs(got) do members[#members + 1] = m end
  end
  table.sort(members)
  local last = nil
  local taken = 0
  for _, m in ipairs(members) do
    if m ~= last then
      taken = taken + 1
      if taken > count then break end
      last = m
      local id = unpad(m)
      local entry = redis.call('XRANGE', KEYS[1], id, id)
      if entry[1] then
        found[#found + 1] = entry[1]
        if #found == count then break end
      end
    end
  end
  if last == nil or (not more and taken <= count) then break end
  from = '(' .. last
end
return {oldest[1][1], found}
"""
)


def read_visible_args(
    stream_key: str, audiences: Sequence[str], after: str | None, count: int
) -> list[Any]:
    """`numkeys` and the keys and arguments of READ_VISIBLE."""
    keys = [stream_key, *(index_key(a) for a in audiences)]
    start = "" if after is None else member(after)
    return [len(keys), *keys, start, count]
