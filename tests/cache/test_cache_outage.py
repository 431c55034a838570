"""Redis stopped for real: reads answer from PostgreSQL, writes commit; Redis restarted
with its data: nothing written meanwhile is served stale."""

from __future__ import annotations

import asyncio
from pathlib import Path

from azora_nexus.backends.private import create_password
from azora_nexus.backends.redis import EmbeddedRedis
from azora_nexus.cache import CacheOptions, keys, open_cache
from azora_nexus.cache.breaker import Admission, Breaker
from azora_nexus.cache.client import create_redis
from azora_nexus.sync import invalidate_after_commit
from tests.cache.cache_helpers import ProbeTable, probe_key
from tests.support.server import reserve_port


class RedisOnPort(EmbeddedRedis):
    """Restarts on the port the stopped server had. The launcher's free-port check binds
    without SO_REUSEADDR, so it refuses a port whose old connections sit in TIME_WAIT,
    which redis-server itself (SO_REUSEADDR) accepts."""

    def __init__(self, data_dir: Path, port: int) -> None:
        super().__init__(data_dir)
        self.fixed_port = port

    def before_spawn(self) -> None:
        self.port = self.fixed_port


async def test_reads_fall_back_during_an_outage_and_nothing_is_stale_after_it(
    tmp_path: Path, probe: ProbeTable
) -> None:
    server = EmbeddedRedis(tmp_path / "redis")
    url = await server.start()
    restarted: RedisOnPort | None = None
    loop = asyncio.get_running_loop()
    key = probe_key(1)
    try:
        async with open_cache(url, CacheOptions(timeout_s=0.5, retry_s=0.3)) as cache:

            async def read() -> int:
                return await cache.read_through(key, lambda: probe.version(1))

            async def write() -> int:
                return await probe.bump(
                    1, lambda session: invalidate_after_commit(session, [key], cache=cache)
                )

            assert await read() == 1  # cached
            assert await read() == 1
            old_epoch = cache.store.epoch
            assert old_epoch is not None
            stale_entry = keys.value_key(cache.options.prefix, old_epoch, key)
            await server.stop()

            assert await write() == 2  # its invalidation fails: Redis is gone
            started = loop.time()
            during = [await read() for _ in range(20)]
            elapsed_s = loop.time() - started
            assert await write() == 3  # with the breaker open, it does not even try Redis
            during.append(await read())

            restarted = RedisOnPort(tmp_path / "redis", server.port)
            await restarted.start()
            raw = create_redis(url)
            try:
                # Redis kept the old entry (AOF): only the epoch keeps it from being served.
                assert await raw.get(stale_entry) is not None
            finally:
                await raw.aclose()
            hits_before = cache.stats.hits
            after: list[int] = []
            async with asyncio.timeout(10):
                while not cache.breaker.is_closed or cache.stats.hits == hits_before:
                    after.append(await read())
                    await asyncio.sleep(0.02)

            assert during == [2] * 20 + [3]
            assert elapsed_s < 1.0  # one failed call opened the breaker; the rest skipped Redis
            assert set(after) == {3}
            assert cache.store.epoch != old_epoch
            assert (cache.stats.epoch_bumps, cache.breaker.trips) == (1, 1)
            assert cache.stats.fallbacks >= 21
    finally:
        await server.stop()
        if restarted is not None:
            await restarted.stop()


async def test_a_node_started_while_redis_is_down_serves_from_postgres_then_caches(
    tmp_path: Path, probe: ProbeTable
) -> None:
    port = reserve_port()
    server = RedisOnPort(tmp_path / "redis", port)
    # The password the server will require, made before it exists (as its first start would).
    server.password_path.parent.mkdir(mode=0o700, parents=True)
    url = f"redis://:{create_password(server.password_path)}@127.0.0.1:{port}/0"
    key = probe_key(2)
    async with open_cache(url, CacheOptions(retry_s=0.2)) as cache:
        down = [await cache.read_through(key, lambda: probe.version(2)) for _ in range(5)]
        await server.start()
        try:
            async with asyncio.timeout(10):
                while cache.stats.hits == 0:
                    await cache.read_through(key, lambda: probe.version(2))
                    await asyncio.sleep(0.05)
        finally:
            await server.stop()

    assert down == [1] * 5
    assert cache.stats.fills == 1
    assert cache.breaker.trips == 1


def test_the_breaker_lets_one_probe_through_per_retry_period() -> None:
    now = [0.0]
    breaker = Breaker(retry_s=1.0, clock=lambda: now[0])
    assert breaker.admit() is Admission.NORMAL

    breaker.failed(Admission.NORMAL)
    assert (breaker.state, breaker.admit()) == ("open", None)
    now[0] = 1.0
    probe = breaker.admit()
    assert (probe, breaker.state, breaker.admit()) == (Admission.PROBE, "half-open", None)
    breaker.failed(Admission.PROBE)  # still down: wait another period
    now[0] = 1.5
    assert breaker.admit() is None
    now[0] = 2.0
    assert breaker.admit() is Admission.PROBE
    breaker.succeeded(Admission.NORMAL)  # a call from before the outage proves nothing
    assert breaker.state == "half-open"
    breaker.succeeded(Admission.PROBE)
    assert (breaker.state, breaker.admit(), breaker.trips) == ("closed", Admission.NORMAL, 1)
