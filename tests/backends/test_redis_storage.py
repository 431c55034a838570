"""The embedded Valkey stays compact: its AOF is rewritten as it grows, and its memory
follows the stream's cap, not the number of events ever published."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from azora_nexus.backends.redis import EmbeddedRedis
from azora_nexus.cache.client import create_redis
from azora_nexus.events.envelope import NewEvent
from azora_nexus.events.stream import EventStream
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

CAP = 1000
PUBLISHED = 20_000


def aof_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in (folder / "appendonlydir").iterdir())


async def test_aof_is_rewritten_and_memory_follows_the_stream_cap(own_data_dir: Path) -> None:
    server = EmbeddedRedis(own_data_dir / "valkey-9")
    await server.start()
    redis = create_redis(server.url)
    try:
        config: Any = await redis.config_get("auto-aof-rewrite-*")
        assert config == {
            "auto-aof-rewrite-percentage": "100",
            "auto-aof-rewrite-min-size": str(16 * 1024 * 1024),
        }
        # The thresholds scaled down, so that a test-sized stream crosses them many times.
        await redis.config_set("auto-aof-rewrite-min-size", str(1024 * 1024))
        stream = EventStream(redis, maxlen=CAP)
        payload = {"memo": "x" * 400}
        for i in range(PUBLISHED):
            await stream.append(NewEvent("system.alert", payload | {"n": i}, "t", 1, None))

        async def rewritten() -> bool:
            info: Any = await redis.info("persistence")
            return not info["aof_rewrite_in_progress"] and info["aof_rewrites"] >= 1

        await eventually(rewritten, timeout_s=30)
        length = await redis.xlen("azora:events")
        stream_bytes = await redis.memory_usage("azora:events") or 0
        assert CAP <= length < CAP + 200  # MAXLEN ~ trims whole nodes of 100 entries
        written = PUBLISHED * 450
        on_disk = aof_bytes(server.data_dir)
        # What was written is ~9 MB; what the disk keeps is about the capped stream.
        assert on_disk < 2 * 1024 * 1024 + 2 * stream_bytes, (on_disk, written)
        print(f"stream {length} entries: {stream_bytes} B in memory, AOF {on_disk} B")
    finally:
        await redis.aclose()
        await server.stop()
