"""The embedded PostgreSQL's continuous archive: one cold base copy and every WAL segment since.

Together they can rebuild the cluster as of any moment after the base was taken, which is
what `azora backup` copies and `azora restore --at` replays.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

BASE_INFO = "base.json"


@dataclass(frozen=True)
class WalArchive:
    """`<data_dir>/postgres-18-archive/`: `base/` (a cold copy) and `wal/` (archived segments)."""

    root: Path

    @property
    def base(self) -> Path:
        return self.root / "base"

    @property
    def wal(self) -> Path:
        return self.root / "wal"

    def has_base(self) -> bool:
        return (self.root / BASE_INFO).exists()

    def base_time(self) -> float:
        """When the base was copied (seconds since the epoch)."""
        info = json.loads((self.root / BASE_INFO).read_text())
        return float(info["taken_at"])

    def take_cold_base(self, data_dir: Path) -> None:
        """Copy a stopped cluster's dir as the base; the WAL from now on extends it."""
        shutil.rmtree(self.base, ignore_errors=True)
        taken_at = time.time()
        shutil.copytree(
            data_dir,
            self.base,
            symlinks=True,
            ignore=shutil.ignore_patterns("postmaster.pid", "postmaster.opts", "azora-server.json"),
        )
        (self.root / BASE_INFO).write_text(json.dumps({"taken_at": taken_at}))
