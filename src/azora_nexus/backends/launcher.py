"""Decides, in one place, which backends run embedded, and starts and stops them.

A URL that is set is used as it is; an unset one starts the embedded server under
`AZORA_DATA_DIR/{postgres-18,valkey-9,secantus}`. The data dir is locked for as long as
the servers run, so a second launcher on it fails at once instead of starting twins.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from azora_nexus.backends.mongo import EmbeddedMongo
from azora_nexus.backends.postgres import EmbeddedPostgres
from azora_nexus.backends.private import PRIVATE_DIR, PRIVATE_FILE, tighten
from azora_nexus.backends.process import ChildServer, ServerRecord, is_alive
from azora_nexus.backends.redis import DATA_DIR_NAME as REDIS_DATA_DIR
from azora_nexus.backends.redis import EmbeddedRedis
from azora_nexus.backends.supervision import Supervisor
from azora_nexus.backends.wal_keeper import keep_wal
from azora_nexus.config import Settings
from azora_nexus.errors import BackendStartError

logger = logging.getLogger(__name__)

LOCK_FILE = "azora.lock"


@dataclass(frozen=True)
class BackendUrls:
    """Where each backend answers, embedded or not."""

    database: str
    redis: str
    mongodb: str


def embedded_servers(settings: Settings) -> dict[str, ChildServer]:
    """The embedded server of every backend, configured from `settings` (not started)."""
    root = settings.data_dir
    return {
        "postgres": EmbeddedPostgres(root / "postgres-18", settings.postgres_port),
        "redis": EmbeddedRedis(root / REDIS_DATA_DIR, settings.redis_port),
        "mongo": EmbeddedMongo(root / "secantus", settings.mongo_port),
    }


def configured_urls(settings: Settings) -> dict[str, str | None]:
    return {
        "postgres": settings.database_url,
        "redis": settings.redis_url,
        "mongo": settings.mongodb_uri,
    }


@asynccontextmanager
async def lock_data_dir(data_dir: Path) -> AsyncIterator[None]:
    """Hold an exclusive lock on the data dir; the kernel drops it if we are killed."""
    data_dir.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    handle: IO[str] = os.fdopen(fd, "r+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            raise BackendStartError(
                f"the data dir {data_dir} is in use by azora (pid {owner}); "
                "stop it first or set another AZORA_DATA_DIR"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


@asynccontextmanager
async def start_backends(settings: Settings) -> AsyncIterator[BackendUrls]:
    """Start the embedded server of every backend whose URL is unset; stop them on exit."""
    urls = configured_urls(settings)
    wanted = {
        name: server for name, server in embedded_servers(settings).items() if urls[name] is None
    }
    if not wanted:
        yield _as_backend_urls(urls)
        return
    async with lock_data_dir(settings.data_dir):
        started: list[ChildServer] = []
        try:
            results = await asyncio.gather(
                *(_start(server, started) for server in wanted.values()),
                return_exceptions=True,
            )
            failures = [r for r in results if isinstance(r, BaseException)]
            if failures:
                raise failures[0]
            for name, server in wanted.items():
                urls[name] = server.url
            # Files of earlier releases, and any the servers made before their umask, 0600.
            await asyncio.to_thread(tighten, settings.data_dir)
            supervisor = Supervisor(wanted, settings.data_dir)
            supervisor.start()
            try:
                async with _tend_archive(wanted.get("postgres"), settings):
                    yield _as_backend_urls(urls)
            finally:
                await supervisor.stop()  # before the servers stop: no restart of those
        finally:
            await asyncio.gather(*(server.stop() for server in started))


def _tend_archive(
    server: ChildServer | None, settings: Settings
) -> contextlib.AbstractAsyncContextManager[None]:
    if not isinstance(server, EmbeddedPostgres):
        return contextlib.nullcontext()
    return keep_wal(server, settings.base_backup_interval_s, settings.wal_retention_s)


def lock_owner(data_dir: Path) -> int | None:
    """The pid of the live process holding the data dir's lock, or None when it is free."""
    path = data_dir / LOCK_FILE
    if not path.exists():
        return None
    with path.open("r") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = handle.read().strip()
            return int(owner) if owner.isdigit() else -1
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


@asynccontextmanager
async def attach_backends(settings: Settings) -> AsyncIterator[BackendUrls]:
    """The servers a running `azora up` owns on this data dir, or ours for the duration."""
    if lock_owner(settings.data_dir) is None:
        async with start_backends(settings) as urls:
            yield urls
        return
    running = configured_urls(settings)
    for name, server in embedded_servers(settings).items():
        record = ServerRecord.read(server.data_dir)
        if running[name] is None and record is not None and is_alive(record.pid):
            running[name] = record.url
    if None in running.values():
        raise BackendStartError(
            f"the data dir {settings.data_dir} is locked but its servers are not running"
        )
    yield _as_backend_urls(running)


async def _start(server: ChildServer, started: list[ChildServer]) -> str:
    started.append(server)  # stop even a half-started server
    return await server.start()


def _as_backend_urls(urls: dict[str, str | None]) -> BackendUrls:
    database, redis, mongodb = urls["postgres"], urls["redis"], urls["mongo"]
    if database is None or redis is None or mongodb is None:
        raise RuntimeError(f"a backend has no URL: {urls}")
    return BackendUrls(database=database, redis=redis, mongodb=mongodb)


@dataclass(frozen=True)
class BackendStatus:
    name: str
    embedded: bool
    running: bool
    url: str | None
    pid: int | None


def backend_status(settings: Settings) -> list[BackendStatus]:
    """What runs where, read from the settings and the data dir's pid files."""
    urls = configured_urls(settings)
    statuses = []
    for name, server in embedded_servers(settings).items():
        if urls[name] is not None:
            statuses.append(BackendStatus(name, False, True, urls[name], None))
            continue
        record = ServerRecord.read(server.data_dir)
        running = record is not None and is_alive(record.pid)
        statuses.append(
            BackendStatus(
                name,
                True,
                running,
                record.url if record and running else None,
                record.pid if record and running else None,
            )
        )
    return statuses
