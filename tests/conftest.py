"""Real backends, started once per session; every test gets clean ones of its own.

Embedded servers start under a temporary AZORA_DATA_DIR unless DATABASE_URL, REDIS_URL or
MONGODB_URI name running servers (CI's second pass uses Debian's PostgreSQL and Redis).
Each test gets its own PostgreSQL database (cloned from a migrated template), a flushed
Redis database and its own Mongo database.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from pymongo import AsyncMongoClient
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from azora_nexus.app import create_app
from azora_nexus.auth.tokens import Role, issue_token
from azora_nexus.backends import BackendUrls, start_backends
from azora_nexus.cache.client import create_redis
from azora_nexus.config import Settings
from azora_nexus.database.migrate import upgrade
from azora_nexus.nexus import Nexus, open_nexus
from tests.support.server import release_reserved_ports

TEMPLATE_DB = "azora_test_template"
JWT_SECRET = "test-secret-that-is-long-enough-for-hs256-signing"
# Tests register many users from 127.0.0.1; the per-address registration limit (10 an
# hour by default) is exercised by tests/security/test_signup_flood.py with its own value.
# Set in the environment so that nodes started as processes (`azora up`) get it too.
os.environ.setdefault("AZORA_REGISTRATIONS_PER_ADDRESS", "1000000")
# A sign-in delay longer than any test, so what a test sees refused does not depend on how
# fast the machine is (the 1 s default could pass between two attempts on a loaded one).
os.environ.setdefault("AZORA_LOGIN_DELAY_BASE_S", "60")
_counter = itertools.count(1)


SLOW_TIMEOUT_S = 120


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test marked `slow` gets SLOW_TIMEOUT_S instead of the 30 s of pyproject.toml."""
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_S))


def with_database(url: str, name: str) -> str:
    """`url` pointing at another database on the same server."""
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def pg_connect_args(url: str) -> dict[str, object]:
    parsed = make_url(url)
    return {
        "host": parsed.host,
        "port": parsed.port,
        "user": parsed.username,
        "password": parsed.password,
        "database": "postgres",
    }


@pytest.fixture(scope="session")
def session_data_dir() -> Iterator[Path]:
    # World-searchable: the embedded PostgreSQL runs as its own user (BACKENDS.md).
    with tempfile.TemporaryDirectory(prefix="azora-test-") as name:
        os.chmod(name, 0o755)
        yield Path(name)


WORKER_NAMES = {"outbox relay", "stream tailer", "archiver", "retention"}


@pytest.fixture(autouse=True)
async def no_worker_outlives_its_test() -> AsyncIterator[None]:
    """A node's background workers must stop with it: a leaked archiver would take the
    next test's events from the shared Redis."""
    yield
    await asyncio.sleep(0)
    leaked = [t.get_name() for t in asyncio.all_tasks() if t.get_name() in WORKER_NAMES]
    assert leaked == [], f"background workers still running after the test: {leaked}"


@pytest.fixture(autouse=True)
def ports_reserved_for_the_test() -> Iterator[None]:
    """Ports a test reserved for its servers (tests/support/server.py) are freed after it."""
    yield
    release_reserved_ports()


@pytest.fixture
def own_data_dir(session_data_dir: Path) -> Iterator[Path]:
    """A fresh data dir the embedded PostgreSQL user can reach (pytest's tmp_path is 0700),
    removed after the test: clusters and WAL archives do not pile up until the session ends
    (whose teardown, counted against the last test's 30 s, would then remove them all)."""
    path = session_data_dir / f"own-{next(_counter)}"
    path.mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def tolerate_pymongo_socket_leak(config: pytest.Config, mongodb_url: str) -> None:
    """Let through the one leak the suite cannot fix: PyMongo 4.20's async pool leaves a
    new connection's socket unclosed when the task creating it is cancelled (a node's
    background task at shutdown): `_async_create_connection` closes it only on OSError
    (PYTHON-5867, unfixed in 4.20.1; traced with tracemalloc to pool_shared.py). Only
    sockets to this MongoDB are let through; a leaked socket to anything else still fails
    the test it shows up in."""
    port = urlsplit(mongodb_url).port
    config.addinivalue_line(
        "filterwarnings",
        rf"ignore:Exception ignored in. <socket\.socket .*raddr=\('127\.0\.0\.1', {port}\)>"
        ":pytest.PytestUnraisableExceptionWarning",
    )


@pytest.fixture(scope="session")
async def backends(
    session_data_dir: Path, pytestconfig: pytest.Config
) -> AsyncIterator[BackendUrls]:
    """The three backends for the whole session, and a migrated template database."""
    settings = Settings(AZORA_DATA_DIR=session_data_dir / "shared")
    async with start_backends(settings) as urls:
        tolerate_pymongo_socket_leak(pytestconfig, urls.mongodb)
        conn = await asyncpg.connect(**pg_connect_args(urls.database))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}"')
            await conn.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
        finally:
            await conn.close()
        await upgrade(with_database(urls.database, TEMPLATE_DB))
        yield urls


@pytest.fixture
async def database_url(backends: BackendUrls) -> AsyncIterator[str]:
    """A fresh, migrated database for this test, dropped afterwards."""
    name = f"azora_test_{os.getpid()}_{next(_counter)}"
    conn = await asyncpg.connect(**pg_connect_args(backends.database))
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
        yield with_database(backends.database, name)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def redis_url(backends: BackendUrls) -> str:
    """The session's Redis, emptied for this test."""
    client = create_redis(backends.redis)
    try:
        await client.flushdb()
    finally:
        await client.aclose()
    return backends.redis


@pytest.fixture
async def mongodb_uri(backends: BackendUrls) -> AsyncIterator[str]:
    """A Mongo database of this test's own, dropped afterwards."""
    name = f"azora_test_{next(_counter)}"
    parsed = backends.mongodb.split("?", 1)
    base = parsed[0].rsplit("/", 1)[0]
    query = f"?{parsed[1]}" if len(parsed) > 1 else ""
    yield f"{base}/{name}{query}"
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(backends.mongodb)
    try:
        await client.drop_database(name)
    finally:
        await client.close()


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_url: str, mongodb_uri: str) -> Settings:
    """Settings naming this test's clean backends."""
    return Settings(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        MONGODB_URI=mongodb_uri,
        AZORA_DATA_DIR=tmp_path / "data",
        AZORA_JWT_SECRET=JWT_SECRET,
        AZORA_ENV="test",
    )


@pytest.fixture
async def nexus(settings: Settings) -> AsyncIterator[Nexus]:
    async with open_nexus(settings) as opened:
        yield opened


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = create_redis(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncClient]:
    """An HTTP client talking to the whole app in process, lifespan included."""
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        transport = ASGITransport(app=manager.app)
        async with AsyncClient(transport=transport, base_url="http://nexus") as http:
            yield http


def token_for(role: Role, sub: str | None = None) -> str:
    """A valid access token for tests."""
    return issue_token(JWT_SECRET, sub=sub or role.value, role=role)


def auth_header(role: Role, sub: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(role, sub)}"}
