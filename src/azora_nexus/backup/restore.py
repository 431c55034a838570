"""`restore_backup`: a fresh data dir brought back to a backup, or to a moment inside it.

Everything that can be refused is checked before anything is written: a data dir in use or
not fresh, a damaged backup, a moment outside the backup's window. Afterwards the counts
(full restores) and the ledger invariant are verified.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from azora_nexus.backends.launcher import embedded_servers, lock_data_dir
from azora_nexus.backends.mongo import EmbeddedMongo
from azora_nexus.backends.postgres import EmbeddedPostgres
from azora_nexus.backends.private import tighten
from azora_nexus.backup import documents, postgres
from azora_nexus.backup.manifest import Manifest, iso
from azora_nexus.config import Settings
from azora_nexus.errors import Invalid

OnStep = Callable[[str], None]
RESTORE_STEPS = 5  # one per on_step call in restore_backup and _restore
RECOVERY_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class RestoreReport:
    table_counts: dict[str, int]
    collection_counts: dict[str, int]


def check_fresh(servers: list[Path]) -> None:
    for path in servers:
        if path.exists() and any(path.iterdir()):
            raise Invalid(f"{path} is not empty: restore needs a fresh AZORA_DATA_DIR")


def check_moment(manifest: Manifest, at_s: float | None) -> None:
    if at_s is not None and not manifest.pitr_from <= at_s <= manifest.pitr_to:
        raise Invalid(
            f"--at must lie inside this backup's window: {iso(manifest.pitr_from)} to "
            f"{iso(manifest.pitr_to)}"
        )


async def restore_backup(
    settings: Settings, source: Path, at_s: float | None, on_step: OnStep
) -> RestoreReport:
    """Restore `source` into the fresh data dir of `settings` and verify the result."""
    servers = embedded_servers(settings)
    pg, mongo = servers["postgres"], servers["mongo"]
    assert isinstance(pg, EmbeddedPostgres)
    assert isinstance(mongo, EmbeddedMongo)
    async with lock_data_dir(settings.data_dir):
        check_fresh([pg.data_dir, pg.archive.root, mongo.data_dir])
        on_step("verifying the backup's checksums")
        manifest = Manifest.read(source)
        await asyncio.to_thread(manifest.verify_files, source)
        check_moment(manifest, at_s)
        try:
            return await _restore(manifest, source, at_s=at_s, pg=pg, mongo=mongo, on_step=on_step)
        except BaseException:
            await asyncio.gather(pg.stop(), mongo.stop())
            for path in (pg.data_dir, pg.archive.root, mongo.data_dir):
                shutil.rmtree(path, ignore_errors=True)
            raise


async def _restore(
    manifest: Manifest,
    source: Path,
    *,
    at_s: float | None,
    pg: EmbeddedPostgres,
    mongo: EmbeddedMongo,
    on_step: OnStep,
) -> RestoreReport:
    on_step("copying the PostgreSQL base and WAL")
    replay_wal = pg.archive.root / "replay"
    await asyncio.to_thread(
        shutil.copytree, source / "postgres" / "base", pg.data_dir, dirs_exist_ok=True
    )
    await asyncio.to_thread(shutil.copytree, source / "postgres" / "wal", replay_wal)
    pg.own(pg.data_dir)
    pg.own(replay_wal)
    postgres.configure_recovery(pg.data_dir, replay_wal, at_s)
    on_step("replaying the WAL" + (f" to {iso(at_s)}" if at_s is not None else ""))
    url = await pg.start()
    await postgres.wait_promoted(url, RECOVERY_TIMEOUT_S)
    on_step("loading the Mongo documents")
    mongo_url = await mongo.start()
    await documents.load(mongo_url, source / "mongo", manifest.indexes)
    on_step("verifying counts and the ledger")
    report = RestoreReport(
        table_counts=await postgres.table_counts(url),
        collection_counts=await documents.collection_counts(mongo_url),
    )
    verify(manifest, report, at_s, await postgres.ledger_problems(url))
    await asyncio.gather(pg.stop(), mongo.stop())
    # The restored cluster starts a new archive: its own cold base, no old WAL.
    shutil.rmtree(pg.archive.root)
    pg.prepare()  # secures a cluster restored from a backup older than its password, too
    tighten(pg.data_dir.parent)
    return report


def verify(
    manifest: Manifest, report: RestoreReport, at_s: float | None, ledger: list[str]
) -> None:
    if ledger:
        raise Invalid("restored ledger is not balanced: " + "; ".join(ledger))
    if report.collection_counts != manifest.collection_counts:
        raise Invalid(
            f"restored documents {report.collection_counts} differ from the backup's "
            f"{manifest.collection_counts}"
        )
    # A restore to an earlier moment has fewer rows by design; a full one must match.
    if at_s is None and report.table_counts != manifest.table_counts:
        raise Invalid(
            f"restored rows {report.table_counts} differ from the backup's {manifest.table_counts}"
        )
