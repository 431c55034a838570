"""`create_backup`: one self-describing directory holding everything Nexus keeps on disk.

`postgres/base` and `postgres/wal` are the embedded PostgreSQL's continuous archive (a cold
base copy and every WAL segment since, up to this backup), so a restore can replay to the
backup's end or to any moment after the base; `mongo/` holds each collection as `.bson`.
Redis is not backed up: it holds the cache and the recent event stream, both rebuilt from
PostgreSQL and the Mongo archive.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

from sqlalchemy.engine import make_url

from azora_nexus.backends.launcher import attach_backends, embedded_servers
from azora_nexus.backends.postgres import EmbeddedPostgres
from azora_nexus.backends.private import private_dir, tighten
from azora_nexus.backends.wal import Base, WalArchive
from azora_nexus.backends.wal_keeper import take_base_and_prune
from azora_nexus.backup import documents, postgres
from azora_nexus.backup.manifest import Manifest
from azora_nexus.config import Settings
from azora_nexus.errors import Invalid

OnStep = Callable[[str], None]
BACKUP_STEPS = 6


def copy_archive(archive: WalArchive, target: Path) -> Base:
    """The oldest base and every WAL segment since, under the lock that keeps pruning away;
    returns the base copied (the first moment the copy can restore)."""
    with archive.locked():
        base = archive.oldest_base()
        shutil.copytree(base.path, target / "base", symlinks=True)
        shutil.copytree(archive.wal, target / "wal", ignore=shutil.ignore_patterns("*.tmp"))
    return base


def default_target(settings: Settings) -> Path:
    return settings.data_dir / "backups" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


async def create_backup(settings: Settings, target: Path, on_step: OnStep) -> Manifest:
    """Write a backup of this data dir's servers (running or not) to the new dir `target`."""
    if settings.database_url:
        raise Invalid(
            "azora backup covers the embedded PostgreSQL (DATABASE_URL is set): back up an "
            "external server with its own tools (pg_basebackup and WAL archiving)"
        )
    if target.exists() and any(target.iterdir()):
        raise Invalid(f"{target} is not empty: a backup needs a new directory")
    if target.parent == settings.data_dir / "backups":
        private_dir(target.parent)
    server = embedded_servers(settings)["postgres"]
    assert isinstance(server, EmbeddedPostgres)
    archive = server.archive
    try:
        async with attach_backends(settings) as urls:
            on_step("taking a base backup and pruning the WAL archive")
            port = make_url(urls.database).port
            assert port is not None
            await take_base_and_prune(server, port, settings.wal_retention_s)
            on_step("closing the current WAL segment")
            ended_at = await postgres.close_wal_segment(urls.database)
            on_step("counting rows")
            tables = await postgres.table_counts(urls.database)
            on_step("copying the PostgreSQL base and WAL archive")
            oldest = await asyncio.to_thread(copy_archive, archive, target / "postgres")
            on_step("dumping the Mongo documents")
            collections, indexes = await documents.dump(urls.mongodb, target / "mongo")
        on_step("writing checksums and the manifest")
        manifest = Manifest(
            created_at=time.time(),
            versions={
                "azora-nexus": version("azora-nexus"),
                "postgres": "18",
                "secantusdb": version("secantusdb"),
            },
            pitr_from=oldest.taken_at,
            pitr_to=ended_at,
            table_counts=tables,
            collection_counts=collections,
            indexes=indexes,
        )
        await asyncio.to_thread(manifest.write, target)
        # A backup holds everything the data dir does, the passwords too: as private.
        await asyncio.to_thread(tighten, target)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)  # never leave half a backup behind
        raise
    return manifest
