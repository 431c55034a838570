"""Backup and (point-in-time) restore of the embedded data, and the refusals that change nothing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import pytest
from pymongo import AsyncMongoClient

from azora_nexus.backends import start_backends
from azora_nexus.backup.backup import create_backup
from azora_nexus.backup.manifest import Manifest
from azora_nexus.backup.restore import restore_backup
from azora_nexus.config import Settings
from azora_nexus.database.migrate import upgrade
from azora_nexus.errors import BackendStartError, Invalid

# Starts processes (servers, the CLI, a browser) or runs long: 120 s (tests/conftest.py).
pytestmark = pytest.mark.slow


def ignore_step(_: str) -> None:
    """Tests do not watch progress."""


async def insert_notes(url: str, *notes: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS notes (text text)")
        await conn.executemany("INSERT INTO notes VALUES ($1)", [(n,) for n in notes])
    finally:
        await conn.close()


async def notes_in(data_dir: Path) -> list[str]:
    async with start_backends(Settings(AZORA_DATA_DIR=data_dir)) as urls:
        conn = await asyncpg.connect(urls.database)
        try:
            return [r["text"] for r in await conn.fetch("SELECT text FROM notes ORDER BY text")]
        finally:
            await conn.close()


@pytest.fixture
async def backup_with_moment(own_data_dir: Path) -> tuple[Path, float, Manifest]:
    """A backup holding notes a1, a2 written before a noted moment and b1 after it."""
    settings = Settings(AZORA_DATA_DIR=own_data_dir / "source")
    async with start_backends(settings) as urls:
        await upgrade(urls.database)  # the ledger tables the restore verifies
        await insert_notes(urls.database, "a1", "a2")
        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(urls.mongodb)
        try:
            await client.get_default_database()["events"].insert_one({"_id": "1-0", "n": 1})
        finally:
            await client.close()
        await asyncio.sleep(1.1)
        moment = time.time()
        await asyncio.sleep(1.1)
        await insert_notes(urls.database, "b1")
        # Taken while the servers run, as from beside a running `azora up`.
        manifest = await create_backup(settings, own_data_dir / "backup", ignore_step)
    return own_data_dir / "backup", moment, manifest


async def test_restore_to_a_moment_keeps_only_what_was_written_before_it(
    backup_with_moment: tuple[Path, float, Manifest], own_data_dir: Path
) -> None:
    backup, moment, manifest = backup_with_moment
    assert manifest.pitr_from < moment < manifest.pitr_to
    assert manifest.collection_counts == {"events": 1}
    assert manifest.table_counts["notes"] == 3

    target = own_data_dir / "at-moment"
    await restore_backup(Settings(AZORA_DATA_DIR=target), backup, moment, ignore_step)
    assert await notes_in(target) == ["a1", "a2"]


async def test_full_restore_brings_back_everything_and_verifies_counts(
    backup_with_moment: tuple[Path, float, Manifest], own_data_dir: Path
) -> None:
    backup, _, manifest = backup_with_moment
    target = own_data_dir / "full"
    report = await restore_backup(Settings(AZORA_DATA_DIR=target), backup, None, ignore_step)
    assert report.table_counts == manifest.table_counts
    assert report.collection_counts == {"events": 1}
    assert await notes_in(target) == ["a1", "a2", "b1"]
    async with start_backends(Settings(AZORA_DATA_DIR=target)) as urls:
        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(urls.mongodb)
        try:
            assert await client.get_default_database()["events"].find_one({"_id": "1-0"}) == {
                "_id": "1-0",
                "n": 1,
            }
        finally:
            await client.close()


async def test_a_damaged_backup_is_refused_and_nothing_is_written(
    backup_with_moment: tuple[Path, float, Manifest], own_data_dir: Path
) -> None:
    backup, _, _ = backup_with_moment
    victim = sorted((backup / "postgres" / "wal").iterdir())[0]
    data = bytearray(victim.read_bytes())
    data[100] ^= 0xFF
    victim.write_bytes(bytes(data))
    target = own_data_dir / "from-damaged"
    with pytest.raises(
        Invalid,
        match=rf"backup damaged: postgres/wal/{victim.name} does not "
        "match its checksum",
    ):
        await restore_backup(Settings(AZORA_DATA_DIR=target), backup, None, ignore_step)
    assert sorted(p.name for p in target.iterdir()) == ["azora.lock"]


async def test_restore_into_a_dir_in_use_or_not_fresh_or_outside_the_window_is_refused(
    backup_with_moment: tuple[Path, float, Manifest], own_data_dir: Path
) -> None:
    backup, _, manifest = backup_with_moment
    busy = Settings(AZORA_DATA_DIR=own_data_dir / "busy")
    async with start_backends(busy) as urls:
        await insert_notes(urls.database, "mine")
        with pytest.raises(BackendStartError, match="is in use by azora"):
            await restore_backup(busy, backup, None, ignore_step)
    with pytest.raises(Invalid, match="is not empty: restore needs a fresh AZORA_DATA_DIR"):
        await restore_backup(busy, backup, None, ignore_step)
    assert await notes_in(own_data_dir / "busy") == ["mine"]  # untouched

    fresh = Settings(AZORA_DATA_DIR=own_data_dir / "fresh")
    with pytest.raises(Invalid, match="--at must lie inside this backup's window"):
        await restore_backup(fresh, backup, manifest.pitr_to + 3600, ignore_step)
    assert not (own_data_dir / "fresh" / "postgres-18").exists()
