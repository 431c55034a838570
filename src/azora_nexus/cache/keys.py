"""Every cache key is built here: the logical keys the domain uses and their Redis layout.

A logical key (`user:42`) names one cached thing. In Redis it lives under the cache epoch:
`<prefix>:<epoch>:v:<key>` holds the value and `<prefix>:<epoch>:l:<key>` the fill lease.
Moving the epoch (after an outage) makes every older entry unreachable at once.

Each id is percent-quoted, so an id can never add a `:` level or a glob character to a key
or a pattern: `user:*` matches the user's keys and nothing an odd id could smuggle in.
"""

from __future__ import annotations

import re
from typing import NewType
from urllib.parse import quote

CacheKey = NewType("CacheKey", str)
KeyPattern = NewType("KeyPattern", str)

DEFAULT_PREFIX = "azora:cache"
VALUE = "v"
LEASE = "l"
_GLOB = str.maketrans({c: f"\\{c}" for c in "*?[]\\"})
_SAFE = "-_.~@+="
# What `quote` leaves as it is: such a segment (a UUID, a number) is returned unquoted,
# without quote's per-character work (a transfer names four keys; quoting cost more
# than the rest of its invalidation).
_UNQUOTED = re.compile(r"[A-Za-z0-9\-_.~@+=]*")


def part(value: object) -> str:
    """One key segment: `value` as text with `:`, `%` and glob characters quoted."""
    text = str(value)
    return text if _UNQUOTED.fullmatch(text) else quote(text, safe=_SAFE)


def key(*parts: object) -> CacheKey:
    """A logical key from its segments, e.g. `key("user", 42)` → `user:42`."""
    return CacheKey(":".join(part(p) for p in parts))


def pattern(*parts: object) -> KeyPattern:
    """Every key under these segments, e.g. `pattern("user", 42)` → `user:42:*`."""
    return KeyPattern(":".join([*(part(p) for p in parts), "*"]))


# The domain's keys (CONTRACT.md: users and courses are read cache-aside) ---------------------
def user(user_id: object) -> CacheKey:
    """The user with profile, as `GET /api/users/{id}` answers it."""
    return key("user", user_id)


def user_keys(user_id: object) -> KeyPattern:
    """Everything cached about one user besides `user(user_id)`: enrollments, wallets, ..."""
    return pattern("user", user_id)


def user_enrollments(user_id: object) -> CacheKey:
    return key("user", user_id, "enrollments")


def user_wallets(user_id: object) -> CacheKey:
    return key("user", user_id, "wallets")


def course(course_id: object) -> CacheKey:
    """One course with its lessons, as `GET /api/courses/{id}` answers it."""
    return key("course", course_id)


def enrollment(enrollment_id: object) -> CacheKey:
    return key("enrollment", enrollment_id)


def wallet(wallet_id: object) -> CacheKey:
    return key("wallet", wallet_id)


# The Redis layout ----------------------------------------------------------------------------
def epoch_key(prefix: str) -> str:
    """Where the current epoch lives; it never expires."""
    return f"{prefix}:epoch"


def value_key(prefix: str, epoch: str, cache_key: CacheKey) -> str:
    return f"{prefix}:{epoch}:{VALUE}:{cache_key}"


def lease_key(prefix: str, epoch: str, cache_key: CacheKey) -> str:
    return f"{prefix}:{epoch}:{LEASE}:{cache_key}"


def match(prefix: str, epoch: str, kind: str, key_pattern: KeyPattern) -> str:
    """A SCAN MATCH pattern for the values (`kind="v"`) or leases (`"l"`) under a pattern."""
    return f"{prefix.translate(_GLOB)}:{epoch}:{kind}:{key_pattern}"
