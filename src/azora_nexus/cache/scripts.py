"""The Lua scripts the cache runs: each checks the epoch and does its job in one atomic step.

Redis 6.2 commands only (no EXPIRE NX/GT, no FUNCTION). Every script that touches entries
takes the epoch key first and the epoch the caller believes in; when they differ it does
nothing and answers the current epoch, so a node that missed an epoch move catches up on
its next call instead of reading or writing entries of a dead epoch.
"""

from __future__ import annotations

from enum import IntEnum

from redis.asyncio import Redis
from redis.commands.core import AsyncScript


class Status(IntEnum):
    """What a lookup or acquire found."""

    EPOCH_MOVED = 0
    MISS = 1
    HIT = 2
    HIT_REFRESH = 3  # a hit past its soft deadline, and the caller now holds the lease
    LEASED = 4  # a miss, and the caller now holds the lease
    BUSY = 5  # a miss, and another reader holds the lease


class Fill(IntEnum):
    EPOCH_MOVED = -1
    REJECTED = 0
    ACCEPTED = 1


# KEYS: epoch, value, lease. ARGV: epoch, now_ms, token, lease_ms.
LOOKUP = """
local e = redis.call('GET', KEYS[1])
if e ~= ARGV[1] then return {0, e or ''} end
local v = redis.call('GET', KEYS[2])
if not v then return {1, ''} end
local soft = tonumber(string.sub(v, 1, string.find(v, ':', 1, true) - 1))
if soft > 0 and soft <= tonumber(ARGV[2]) then
  if redis.call('SET', KEYS[3], ARGV[3], 'NX', 'PX', ARGV[4]) then return {3, v} end
end
return {2, v}
"""

# KEYS: epoch, value, lease. ARGV: epoch, token, lease_ms, steal (1 = take it over).
ACQUIRE = """
local e = redis.call('GET', KEYS[1])
if e ~= ARGV[1] then return {0, e or ''} end
local v = redis.call('GET', KEYS[2])
if v then return {2, v} end
if ARGV[4] == '1' then
  redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
  return {4, ''}
end
if redis.call('SET', KEYS[3], ARGV[2], 'NX', 'PX', ARGV[3]) then return {4, ''} end
return {5, ''}
"""

# The race-free fill: only the holder of a lease no write has removed may store a value.
# KEYS: epoch, value, lease. ARGV: epoch, token, stored value, ttl_ms.
FILL = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('GET', KEYS[3]) ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
redis.call('DEL', KEYS[3])
return 1
"""

# KEYS: lease. ARGV: token.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""

# Replacing or deleting the lease is what rejects a fill already in flight. A key its
# writer will refill keeps its value and gets the writer's lease instead: the writer has
# not returned yet, so the old value may still be read until REPLACE swaps it. That value
# expires with the lease at the latest (PTTL check: no EXPIRE LT on 6.2), so a writer that
# dies before REPLACE leaves it for seconds, not for its whole TTL.
# KEYS: epoch, then value and lease of each key. ARGV: epoch, lease_ms, then per key the
# writer's lease token or '' (plain invalidation).
INVALIDATE = """
local e = redis.call('GET', KEYS[1])
if e ~= ARGV[1] then return {0, e or ''} end
local n = 0
for i = 2, #KEYS, 2 do
  local token = ARGV[2 + i / 2]
  if token ~= '' then
    redis.call('SET', KEYS[i + 1], token, 'PX', ARGV[2])
    if redis.call('PTTL', KEYS[i]) > tonumber(ARGV[2]) then
      redis.call('PEXPIRE', KEYS[i], ARGV[2])
    end
  else
    n = n + redis.call('DEL', KEYS[i])
    redis.call('DEL', KEYS[i + 1])
  end
end
return {1, n}
"""

# The writer's refill, before its write returns: the fresh value if its lease is intact,
# else (a later writer took the lease, or the load failed) no value at all.
# KEYS: epoch, value, lease. ARGV: epoch, token, stored value or '', ttl_ms.
REPLACE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local mine = redis.call('GET', KEYS[3]) == ARGV[2]
if mine then redis.call('DEL', KEYS[3]) end
if mine and ARGV[3] ~= '' then
  redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
  return 1
end
redis.call('DEL', KEYS[2])
return 0
"""

# KEYS: epoch. ARGV: a fresh epoch, used only when none is set.
ENSURE_EPOCH = """
local e = redis.call('GET', KEYS[1])
if e then return e end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"""


class Scripts:
    """The scripts registered on one client (EVALSHA, reloaded after a Redis restart)."""

    def __init__(self, redis: Redis) -> None:
        self.lookup: AsyncScript = redis.register_script(LOOKUP)
        self.acquire: AsyncScript = redis.register_script(ACQUIRE)
        self.fill: AsyncScript = redis.register_script(FILL)
        self.release: AsyncScript = redis.register_script(RELEASE)
        self.invalidate: AsyncScript = redis.register_script(INVALIDATE)
        self.replace: AsyncScript = redis.register_script(REPLACE)
        self.ensure_epoch: AsyncScript = redis.register_script(ENSURE_EPOCH)
