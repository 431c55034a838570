"""The WAL archive: durable copies, base backups on a schedule, pruning to the window, and a
point-in-time restore inside the window after pruning."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import asyncpg
import pytest

from azora_nexus.backends import start_backends
from azora_nexus.backends.postgres import EmbeddedPostgres
from azora_nexus.backends.wal import archive_command
from azora_nexus.backup.backup import create_backup
from azora_nexus.backup.restore import restore_backup
from azora_nexus.config import Settings
from azora_nexus.database.migrate import upgrade
from azora_nexus.errors import Invalid

from .test_backup_restore import ignore_step, insert_notes, notes_in


def archive(wal_dir: Path, segment: Path) -> subprocess.CompletedProcess[str]:
    """The archive command run as PostgreSQL runs it: %p and %f substituted, under /bin/sh."""
    command = archive_command(wal_dir).replace("%p", str(segment)).replace("%f", segment.name)
    return subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, check=False)


def test_a_segment_is_copied_once_and_a_crash_leftover_never_blocks_archiving(
    tmp_path: Path,
) -> None:
    segment = tmp_path / "000000010000000000000007"
    segment.write_bytes(b"wal" * 100_000)
    wal_dir = tmp_path / "archive"
    wal_dir.mkdir()
    target = wal_dir / segment.name
    # What a crash mid-copy leaves behind: the temporary file only, half written.
    (wal_dir / (segment.name + ".tmp")).write_bytes(b"wal" * 10)
    assert archive(wal_dir, segment).returncode == 0
    assert target.read_bytes() == segment.read_bytes()
    assert not (wal_dir / (segment.name + ".tmp")).exists()
    # Archived, then a crash before PostgreSQL recorded it: the retry succeeds.
    assert archive(wal_dir, segment).returncode == 0
    # Another segment's bytes under this name are never overwritten.
    other = tmp_path / "other"
    other.write_bytes(b"other")
    other_named = tmp_path / "elsewhere" / segment.name
    other_named.parent.mkdir()
    other_named.write_bytes(b"other")
    assert archive(wal_dir, other_named).returncode != 0
    assert target.read_bytes() == segment.read_bytes()


async def switch_wal(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SELECT pg_switch_wal()")
    finally:
        await conn.close()


@pytest.mark.slow
async def test_the_archive_is_pruned_to_its_window_and_a_moment_inside_it_restores(
    own_data_dir: Path,
) -> None:
    settings = Settings(
        AZORA_DATA_DIR=own_data_dir / "source",
        AZORA_BASE_BACKUP_INTERVAL_S=1,
        AZORA_WAL_RETENTION_S=4,
    )
    archive = EmbeddedPostgres(settings.data_dir / "postgres-18").archive
    async with start_backends(settings) as urls:
        await upgrade(urls.database)
        first_base = archive.bases()[0]
        # Writes and segment switches across several windows while bases are taken.
        for note in range(12):
            await insert_notes(urls.database, f"a{note:02}")
            await switch_wal(urls.database)
            await asyncio.sleep(0.5)
        moment = time.time()
        await asyncio.sleep(1.1)
        await insert_notes(urls.database, "b1")
        manifest = await create_backup(settings, own_data_dir / "backup", ignore_step)
        kept = archive.bases()
    assert not first_base.path.exists(), "the base from the first start outlived the window"
    assert 2 <= len(kept) <= 8
    oldest_segment = min(p.name for p in archive.wal.iterdir() if p.name[:8].isdigit())
    assert oldest_segment[8:] >= kept[0].first_wal[8:]
    assert not (archive.wal / "000000010000000000000001").exists()
    assert manifest.pitr_from == kept[0].taken_at
    assert moment - manifest.pitr_from < 6, "the backup does not start near the window"

    restored = own_data_dir / "restored"
    await restore_backup(
        Settings(AZORA_DATA_DIR=restored), own_data_dir / "backup", moment, ignore_step
    )
    notes = await notes_in(restored)
    assert "b1" not in notes
    assert [f"a{n:02}" for n in range(12)] == [n for n in notes if n.startswith("a")]

    too_early = manifest.pitr_from - 1
    with pytest.raises(Invalid, match="inside this backup's window"):
        await restore_backup(
            Settings(AZORA_DATA_DIR=own_data_dir / "early"),
            own_data_dir / "backup",
            too_early,
            ignore_step,
        )
