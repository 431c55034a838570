"""The embedded servers: start, keep data across restarts, stale servers, clear refusals."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest
from pymongo import AsyncMongoClient

from azora_nexus.backends import start_backends
from azora_nexus.backends.mongo import EmbeddedMongo
from azora_nexus.backends.postgres import EmbeddedPostgres
from azora_nexus.backends.process import ChildServer, ServerRecord, is_alive
from azora_nexus.backends.redis import EmbeddedRedis
from azora_nexus.cache.client import create_redis
from azora_nexus.config import Settings
from azora_nexus.errors import BackendStartError

# Starts processes (servers, the CLI, a browser) or runs long: 120 s (tests/conftest.py).
pytestmark = pytest.mark.slow

HOLDER = Path(__file__).with_name("hold_backends.py")


async def write_postgres(url: str, value: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS kept (v text)")
        await conn.execute("INSERT INTO kept VALUES ($1)", value)
    finally:
        await conn.close()


async def read_postgres(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        return [row["v"] for row in await conn.fetch("SELECT v FROM kept ORDER BY v")]
    finally:
        await conn.close()


async def write_redis(url: str, value: str) -> None:
    client = create_redis(url)
    try:
        await client.rpush("kept", value)
    finally:
        await client.aclose()


async def read_redis(url: str) -> list[str]:
    client = create_redis(url)
    try:
        values = await client.lrange("kept", 0, -1)
        return sorted(v.decode() if isinstance(v, bytes) else v for v in values)
    finally:
        await client.aclose()


async def write_mongo(url: str, value: str) -> None:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(url)
    try:
        await client.get_default_database()["kept"].insert_one({"v": value})
    finally:
        await client.close()


async def read_mongo(url: str) -> list[str]:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(url)
    try:
        docs = await client.get_default_database()["kept"].find().to_list()
        return sorted(str(doc["v"]) for doc in docs)
    finally:
        await client.close()


Writer = Callable[[str, str], Awaitable[None]]
Reader = Callable[[str], Awaitable[list[str]]]
ENGINES: dict[str, tuple[type[ChildServer], str, Writer, Reader]] = {
    "postgres": (EmbeddedPostgres, "postgres-18", write_postgres, read_postgres),
    "redis": (EmbeddedRedis, "valkey-9", write_redis, read_redis),
    "mongo": (EmbeddedMongo, "secantus", write_mongo, read_mongo),
}


@pytest.mark.parametrize("engine", list(ENGINES))
async def test_backend_answers_and_keeps_its_data_across_a_restart(
    engine: str, own_data_dir: Path
) -> None:
    server_class, subdir, write, read = ENGINES[engine]
    server = server_class(own_data_dir / subdir)
    url = await server.start()
    try:
        await write(url, "before restart")
    finally:
        await server.stop()
    assert server.pid is None

    again = server_class(own_data_dir / subdir)
    url = await again.start()
    try:
        await write(url, "after restart")
        assert await read(url) == ["after restart", "before restart"]
    finally:
        await again.stop()


async def test_servers_left_by_a_killed_launcher_are_stopped_and_replaced(
    own_data_dir: Path,
) -> None:
    holder = await asyncio.create_subprocess_exec(
        sys.executable, str(HOLDER), str(own_data_dir), stdout=asyncio.subprocess.PIPE
    )
    assert holder.stdout is not None
    line = await asyncio.wait_for(holder.stdout.readline(), 60)
    old_pids: dict[str, int] = json.loads(line)
    settings = Settings(AZORA_DATA_DIR=own_data_dir)
    with pytest.raises(BackendStartError, match=r"in use by azora \(pid \d+\)"):
        async with start_backends(settings):
            pass
    record = ServerRecord.read(own_data_dir / "postgres-18")
    assert record is not None
    await write_postgres(record.url, "kept through the kill")

    holder.send_signal(signal.SIGKILL)
    await holder.wait()
    assert all(is_alive(pid) for pid in old_pids.values()), "servers should be orphaned"

    async with start_backends(settings) as urls:
        assert not any(is_alive(pid) for pid in old_pids.values())
        assert await read_postgres(urls.database) == ["kept through the kill"]
        await write_redis(urls.redis, "fresh")
        await write_mongo(urls.mongodb, "fresh")


async def test_a_configured_port_that_is_taken_is_refused_in_one_line(own_data_dir: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        server = EmbeddedRedis(own_data_dir / "valkey-9", port=port)
        with pytest.raises(BackendStartError) as caught:
            await server.start()
    assert str(caught.value) == (
        f"redis: port {port} on 127.0.0.1 is already taken (Address already in use)"
    )


async def test_a_missing_binary_is_named(own_data_dir: Path) -> None:
    server = EmbeddedRedis(own_data_dir / "valkey-9")
    server.binary = own_data_dir / "no-such-redis-server"
    with pytest.raises(BackendStartError, match="valkey-server binary is missing"):
        await server.start()


@pytest.mark.parametrize(
    ("engine", "plant", "message"),
    [
        (
            "postgres",
            ("PG_VERSION", "15\n"),
            "holds PostgreSQL 15 data; this build runs PostgreSQL 18",
        ),
        (
            "redis",
            ("AZORA_ENGINE", "redis 6.2\n"),
            "holds redis 6.2 data; this build runs valkey 9",
        ),
        ("mongo", ("AZORA_ENGINE", "secantus 9.9\n"), "holds secantus 9.9 data"),
    ],
)
async def test_a_data_dir_of_another_engine_version_is_refused(
    engine: str, plant: tuple[str, str], message: str, own_data_dir: Path
) -> None:
    server_class, subdir, _, _ = ENGINES[engine]
    target = own_data_dir / subdir / plant[0]
    target.parent.mkdir(parents=True)
    target.write_text(plant[1])
    with pytest.raises(BackendStartError, match=message):
        await server_class(own_data_dir / subdir).start()


async def test_the_redis_6_data_of_an_earlier_release_is_carried_over(own_data_dir: Path) -> None:
    legacy = own_data_dir / "redis-6.2"
    legacy.mkdir()
    # What Redis 6.2 wrote: its single AOF file, plain RESP commands.
    aof = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$5\r\nRPUSH\r\n$4\r\nkept\r\n$6\r\nlegacy\r\n"
    (legacy / "appendonly.aof").write_bytes(aof)
    server = EmbeddedRedis(own_data_dir / "valkey-9")
    url = await server.start()
    try:
        assert await read_redis(url) == ["legacy"]
        await write_redis(url, "new")
    finally:
        await server.stop()
    assert (legacy / "appendonly.aof").read_bytes() == aof, "the old dir is left as it was"

    again = EmbeddedRedis(own_data_dir / "valkey-9")  # carried over once, never again
    url = await again.start()
    try:
        assert await read_redis(url) == ["legacy", "new"]
    finally:
        await again.stop()


async def test_a_backend_with_a_url_is_not_started(own_data_dir: Path, redis_url: str) -> None:
    settings = Settings(
        AZORA_DATA_DIR=own_data_dir,
        REDIS_URL=redis_url,
        DATABASE_URL="postgresql://unused@127.0.0.1:1/x",
        MONGODB_URI="mongodb://127.0.0.1:1/x",
    )
    async with start_backends(settings) as urls:
        assert urls.redis == redis_url
    assert not (own_data_dir / "valkey-9").exists()
