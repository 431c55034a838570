"""Embedded MongoDB-compatible server: SecantusDB, run as a separate process only.

SecantusDB is GPL-2.0: Nexus never imports it, it only runs `python -m secantus` and speaks
the MongoDB wire protocol to it (BACKENDS.md section 4).

Clients must authenticate (SCRAM-SHA-256, `auth = true`): the user `azora` (role `root`)
has a password generated on first start, kept 0600 in the data dir as `azora-password`.
SecantusDB creates users only over the wire and has no localhost exception, so a data dir
without that user is provisioned once by a start without auth: create the user, drop any
other (someone else may have connected in that window), stop, and start with auth.
"""

from __future__ import annotations

import importlib.util
import logging
import signal
import sys
from pathlib import Path

from pymongo import AsyncMongoClient

from azora_nexus.backends.private import (
    create_password,
    write_private,
)
from azora_nexus.backends.process import LOCALHOST, ChildServer
from azora_nexus.errors import BackendStartError

logger = logging.getLogger(__name__)

DATABASE = "azora"
USER = "azora"
# Written once the user holds the password in `azora-password`: from then on, auth is on.
PROVISIONED_FILE = "azora-auth"
USER_EXISTS = 51003


class EmbeddedMongo(ChildServer):
    """SecantusDB on 127.0.0.1, data under `data_dir` (`AZORA_DATA_DIR/secantus`)."""

    name = "mongo"
    engine = "secantus 0.7"
    stop_signal = signal.SIGINT
    stop_timeout_s = 10.0  # it takes about 2 s to close WiredTiger cleanly
    ready_timeout_s = 30.0

    def __init__(self, data_dir: Path, port: int = 0) -> None:
        super().__init__(data_dir, port)
        self._auth = True

    @property
    def config_path(self) -> Path:
        return self.data_dir / "secantusd.toml"

    def check_binaries(self) -> None:
        if importlib.util.find_spec("secantus") is None:
            raise BackendStartError("mongo: the SecantusDB server is missing (install secantusdb)")

    def check_foreign_data(self) -> None:
        """The engine marker is the only sign: WiredTiger files look alike across engines."""

    def prepare(self) -> None:
        """The config is written at each start, since the port may change."""

    def command(self) -> list[str]:
        # Always --config: without it the server reads ./secantusd.toml and ~/.secantus.
        return [sys.executable, "-m", "secantus", "--config", str(self.config_path)]

    def before_spawn(self) -> None:
        write_private(
            self.config_path,
            "[server]\n"
            f'host = "{LOCALHOST}"\n'
            f"port = {self.port}\n"
            f'storage_path = "{self.data_dir / "wiredtiger"}"\n'
            f"auth = {'true' if self._auth else 'false'}\n"
            "\n[storage]\n"
            "sync_on_commit = true\n"
            'cache_size = "256M"\n',
        )

    async def start(self) -> str:
        """Start with auth, provisioning the user first on a data dir that has none."""
        if not (self.data_dir / PROVISIONED_FILE).exists() or not self.password_path.exists():
            await self._provision()  # a new data dir, an older release's, or a rotation
        self._auth = True
        return await super().start()

    async def _provision(self) -> None:
        self._auth = False
        url = await super().start()
        try:
            password = create_password(self.password_path)
            client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(url)
            try:
                admin = client.admin
                try:
                    await admin.command("createUser", USER, pwd=password, roles=["root"])
                except Exception as exc:
                    if getattr(exc, "code", None) != USER_EXISTS:  # a provisioning cut short
                        raise
                    await admin.command("updateUser", USER, pwd=password, roles=["root"])
                users = await admin.command("usersInfo")
                for user in users.get("users", []):
                    if user.get("user") != USER:
                        logger.warning("mongo: dropping user %r made before auth", user["user"])
                        await client[str(user["db"])].command("dropUser", user["user"])
            finally:
                await client.close()
            write_private(self.data_dir / PROVISIONED_FILE, USER + "\n")
        finally:
            await self.stop()

    def client_url(self) -> str:
        # retryWrites=false: the server scans its retry registry on every retryable write.
        if not self._auth:
            return f"mongodb://{LOCALHOST}:{self.port}/{DATABASE}?retryWrites=false"
        return (
            f"mongodb://{USER}:{self.password()}@{LOCALHOST}:{self.port}/{DATABASE}"
            "?retryWrites=false&authSource=admin&authMechanism=SCRAM-SHA-256"
        )

    async def probe(self, timeout_s: float) -> None:
        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
            self.client_url(),
            serverSelectionTimeoutMS=int(timeout_s * 1000),
            connectTimeoutMS=int(timeout_s * 1000),
        )
        try:
            await client.admin.command("ping")  # needs auth when it is on
        finally:
            await client.close()
