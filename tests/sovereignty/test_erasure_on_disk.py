"""After an erasure the user is gone from Redis's files too: the append-only file, which
records every write ever made until it is rewritten, no longer names them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient
from redis.asyncio import Redis

from tests.sovereignty.life import Life
from tests.sovereignty.test_erasure import erase
from tests.support.waiting import eventually

WAIT_S = 5.0
# A life in every domain, then its erasure: seconds, but more on a loaded machine.
pytestmark = pytest.mark.slow


async def aof_files(redis: Redis) -> list[Path]:
    """The server's AOF files, wherever it keeps them (embedded or given by REDIS_URL)."""
    config: Any = await redis.config_get("dir")
    folder = Path(_text(config["dir"]))
    named: Any = await redis.config_get("appenddirname")  # Redis 7+: a folder of AOF parts
    if named:
        folder /= _text(named["appenddirname"])
    return sorted(path for path in folder.glob("appendonly*") if path.is_file())


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def on_disk(redis: Redis, needles: tuple[str, ...]) -> set[str]:
    data = b"".join(path.read_bytes() for path in await aof_files(redis))
    return {needle for needle in needles if needle.encode() in data}


async def test_an_erased_users_email_and_name_leave_the_aof(
    http: AsyncClient, life: Life, redis: Redis
) -> None:
    alice = life.alice
    needles = (alice.email, alice.username)
    persistence: Any = await redis.info("persistence")
    assert int(persistence["aof_enabled"]) == 1, "this Redis keeps no AOF"
    # The premise: before the erasure the AOF names her (her events, her cached profile).
    assert await on_disk(redis, needles) == set(needles)

    response = await erase(http, alice, alice.headers, password=alice.password)
    assert response.status_code == 204, response.text

    # The rewrite is done when the erasure returns; the replaced files are unlinked by the
    # server's background thread a moment later.
    async def gone() -> bool:
        return await on_disk(redis, needles) == set()

    await eventually(gone, timeout_s=WAIT_S)
    # What was not erased is still there: the files were rewritten, not emptied.
    assert await redis.exists(*[k async for k in redis.scan_iter(count=1000)]) > 0
