"""Key segments: quoted exactly as `urllib.parse.quote` quotes them, fast path or not."""

from __future__ import annotations

import random
import string
import uuid
from urllib.parse import quote

from azora_nexus.cache import keys


def test_a_segment_is_what_quote_makes_of_it() -> None:
    rng = random.Random(17)
    alphabet = string.printable + "é中\u2028"
    samples: list[object] = [uuid.uuid4(), 42, -1, "", "a:b", "user:*", "%41", "A-Z_.~@+="]
    samples += ["".join(rng.choices(alphabet, k=rng.randint(0, 10))) for _ in range(5000)]
    for value in samples:
        assert keys.part(value) == quote(str(value), safe="-_.~@+="), repr(value)


def test_an_odd_id_adds_no_level_or_glob() -> None:
    assert keys.wallet("a:b*") == "wallet:a%3Ab%2A"
    assert keys.user_keys("x?") == "user:x%3F:*"
