"""The embedded PostgreSQL's continuous archive: base backups and the WAL segments after them.

A base plus every segment from its first one can rebuild the cluster as of any moment after
the base was taken, which is what `azora backup` copies and `azora restore --at` replays.
The first base is a cold copy taken before the server's first start; later ones are online
(`pg_basebackup`), taken on a schedule by `WalKeeper` and by `azora backup`. Pruning keeps
every base inside the retention window plus the newest one before it, and the segments from
that base's first one on, so every moment inside the window stays restorable.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from azora_nexus.backends.private import PRIVATE_UMASK, open_private_log, write_private
from azora_nexus.errors import BackendUnavailable

BASES = "bases"
LOCK = ".lock"
# A segment's name: timeline, then log and segment numbers (8 hex digits each).
SEGMENT = re.compile(r"^[0-9A-F]{24}")
COLD_COPY_SKIPS = ("postmaster.pid", "postmaster.opts", "azora-server.json")
BASEBACKUP_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class Base:
    """One base backup: its copy, when it became consistent, and the first segment it needs."""

    path: Path
    taken_at: float
    first_wal: str

    @property
    def info_path(self) -> Path:
        return self.path.with_name(self.path.name + ".json")


@dataclass(frozen=True)
class WalArchive:
    """`<data_dir>/postgres-18-archive/`: `bases/` (copies, each with a `.json`) and `wal/`."""

    root: Path

    @property
    def wal(self) -> Path:
        return self.root / "wal"

    def bases(self) -> list[Base]:
        """Every complete base, oldest first (a base without its `.json` is unfinished)."""
        folder = self.root / BASES
        found = []
        for info in folder.glob("*.json") if folder.exists() else []:
            body = json.loads(info.read_text())
            found.append(Base(info.with_suffix(""), float(body["taken_at"]), body["first_wal"]))
        return sorted(found, key=lambda base: base.taken_at)

    def has_base(self) -> bool:
        return bool(self.bases())

    def oldest_base(self) -> Base:
        bases = self.bases()
        if not bases:
            raise BackendUnavailable(f"postgres: the WAL archive {self.root} holds no base backup")
        return bases[0]

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Held while bases are pruned or copied, so a backup never copies a vanishing base."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open_private_log(self.root / LOCK) as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def take_cold_base(self, data_dir: Path, bin_dir: Path) -> Base:
        """Copy a stopped cluster's dir as a base; the WAL from now on extends it."""
        path = self._new_base_path()
        shutil.copytree(
            data_dir, path, symlinks=True, ignore=shutil.ignore_patterns(*COLD_COPY_SKIPS)
        )
        control = _controldata(bin_dir, path)
        first_wal = _field(control, "Latest checkpoint's REDO WAL file")
        return self._finish(Base(path, time.time(), first_wal))

    def take_online_base(self, bin_dir: Path, port: int, password: str) -> Base:
        """A base of the running server on `port` (its WAL comes from the archive, `-X none`)."""
        path = self._new_base_path()
        # The password goes in the environment, never on the command line (which every
        # local user can read in /proc).
        env = os.environ | {"PGPASSWORD": password}
        result = subprocess.run(
            [
                str(bin_dir / "pg_basebackup"),
                *("-h", "127.0.0.1", "-p", str(port), "-U", "postgres"),
                *("-D", str(path), "-X", "none", "--checkpoint=fast", "--no-manifest"),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=BASEBACKUP_TIMEOUT_S,
            env=env,
            umask=PRIVATE_UMASK,
        )
        if result.returncode != 0:
            shutil.rmtree(path, ignore_errors=True)
            why = (result.stderr.strip().splitlines() or ["failed"])[-1]
            raise BackendUnavailable(f"postgres: pg_basebackup failed: {why}")
        # Consistent once pg_basebackup returns: recovery can stop at any moment after this.
        taken_at = time.time()
        label = (path / "backup_label").read_text()
        first_wal = re.search(r"START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)", label)
        assert first_wal is not None, "pg_basebackup wrote a backup_label without its WAL file"
        return self._finish(Base(path, taken_at, first_wal.group(1)))

    def prune(self, retention_s: float, now: float | None = None) -> tuple[int, int]:
        """Drop bases and segments no moment inside the window needs; (bases, segments) dropped."""
        cutoff = (time.time() if now is None else now) - retention_s
        with self.locked():
            bases = self.bases()
            before = [base for base in bases if base.taken_at < cutoff]
            # The newest base before the window restores the window's first moments.
            drop = before[:-1]
            for base in drop:
                base.info_path.unlink()  # first: a base without its .json no longer counts
                shutil.rmtree(base.path, ignore_errors=True)
            kept = self.bases()
            if not kept:
                return len(drop), 0
            return len(drop), self._drop_segments_before(kept[0].first_wal)

    def _drop_segments_before(self, first_wal: str) -> int:
        dropped = 0
        for segment in self.wal.iterdir() if self.wal.exists() else []:
            name = segment.name
            if name.endswith(".history") or not SEGMENT.match(name):
                continue  # timeline histories are tiny and recovery needs them
            # Compared without the timeline, as pg_archivecleanup does.
            if name[8:24] < first_wal[8:24]:
                segment.unlink(missing_ok=True)
                dropped += 1
        return dropped

    def _new_base_path(self) -> Path:
        folder = self.root / BASES
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return folder / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{time.time_ns()}"

    def adopt_legacy_base(self, bin_dir: Path) -> None:
        """Move the single `base/` of archives made before `bases/` into the new layout."""
        legacy, info = self.root / "base", self.root / "base.json"
        if not info.exists():
            return
        path = self._new_base_path()
        legacy.rename(path)
        control = _controldata(bin_dir, path)
        taken_at = float(json.loads(info.read_text())["taken_at"])
        self._finish(Base(path, taken_at, _field(control, "Latest checkpoint's REDO WAL file")))
        info.unlink()

    def _finish(self, base: Base) -> Base:
        info = {"taken_at": base.taken_at, "first_wal": base.first_wal}
        write_private(base.info_path, json.dumps(info))  # written last: the base is complete
        return base


def archive_command(wal_dir: Path) -> str:
    """PostgreSQL's `archive_command`: copy segment `%p` to `wal_dir/%f`, durably.

    The server runs it as its own user with `/bin/sh` and coreutils only. Success means the
    segment is on disk: copied under a temporary name, fsynced, renamed, the folder fsynced. A
    crash leaves at most the temporary file, which the retry overwrites; a segment already
    archived with the same bytes (the crash came before PostgreSQL recorded it) counts as done,
    one with other bytes is refused.
    """
    folder = shlex.quote(str(wal_dir))
    target = f"{folder}/%f"
    return (
        f"if [ -f {target} ]; then cmp -s %p {target}; "
        f"else cp %p {target}.tmp && sync {target}.tmp && mv {target}.tmp {target} "
        f"&& sync {folder}; fi"
    )


def _controldata(bin_dir: Path, data_dir: Path) -> str:
    command = [str(bin_dir / "pg_controldata"), str(data_dir)]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def _field(control: str, name: str) -> str:
    for line in control.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    raise BackendUnavailable(f"postgres: pg_controldata printed no '{name}'")
