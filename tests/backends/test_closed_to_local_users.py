"""The embedded servers are closed to the machine's other users: PostgreSQL, Redis and the
Mongo server ask for passwords generated on first start, no file of the data dir is readable
by anyone else, and the PostgreSQL log names no personal data."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import asyncpg
import pytest
from httpx import AsyncClient
from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure, ServerSelectionTimeoutError
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError
from sqlalchemy.engine import make_url

from azora_nexus.backends import start_backends
from azora_nexus.backends.mongo import PROVISIONED_FILE, EmbeddedMongo
from azora_nexus.backends.postgres import EmbeddedPostgres, binaries_dir
from azora_nexus.backends.private import TRAVERSE_DIR, masked
from azora_nexus.backends.redis import EmbeddedRedis
from azora_nexus.config import Settings

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="runs a command as another user")


def as_nobody(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", "nobody", "--", *command],
        capture_output=True,
        text=True,
        check=False,
        timeout=20,
    )


async def test_postgres_asks_every_client_for_the_generated_password(
    own_data_dir: Path,
) -> None:
    server = EmbeddedPostgres(own_data_dir / "postgres-18")
    url = await server.start()
    try:
        password = server.password()
        assert make_url(url).password == password
        assert len(password) >= 40
        assert stat.S_IMODE(os.stat(server.password_path).st_mode) == 0o600
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(host="127.0.0.1", port=server.port, user="postgres", password="x")
        with pytest.raises((asyncpg.InvalidPasswordError, asyncpg.ClientConfigurationError)):
            await asyncpg.connect(host="127.0.0.1", port=server.port, user="postgres")
        conn = await asyncpg.connect(url)
        try:
            verifier = await conn.fetchval(
                "SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'"
            )
            assert verifier.startswith("SCRAM-SHA-256$")
        finally:
            await conn.close()
    finally:
        await server.stop()
    again = EmbeddedPostgres(own_data_dir / "postgres-18")
    try:
        assert await again.start() == url.replace(str(server.port), str(again.port))  # reused
    finally:
        await again.stop()


@as_root
async def test_another_local_user_can_neither_connect_to_postgres_nor_read_its_password(
    own_data_dir: Path,
) -> None:
    server = EmbeddedPostgres(own_data_dir / "postgres-18")
    await server.start()
    try:
        psql = binaries_dir() / "psql"  # type: ignore[operator]
        refused = as_nobody(
            str(psql), "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres", "-w",
            "-d", "postgres", "-c", "SELECT 1",
        )  # fmt: skip
        assert refused.returncode != 0
        assert "no password supplied" in refused.stderr
        for path in (server.password_path, own_data_dir / "postgres-18.log"):
            peek = as_nobody("cat", str(path))
            assert peek.returncode != 0, path
            assert "Permission denied" in peek.stderr, path
    finally:
        await server.stop()


async def test_a_cluster_made_before_passwords_gets_one_at_its_next_start(
    own_data_dir: Path,
) -> None:
    """The upgrade path: a data dir of an earlier release (trust, no password) is secured."""
    server = EmbeddedPostgres(own_data_dir / "postgres-18")
    await server.start()
    await server.stop()
    # What an earlier release left: trust for everyone and no password at all.
    conn_free = "host all all 127.0.0.1/32 trust\n"
    (server.data_dir / "pg_hba.conf").write_text(conn_free)
    server.password_path.unlink()
    old = await _start_with_trust(server)
    try:
        conn = await asyncpg.connect(host="127.0.0.1", port=old.port, user="postgres")
        await conn.execute("ALTER ROLE postgres PASSWORD NULL")
        await conn.close()
    finally:
        await old.stop()

    upgraded = EmbeddedPostgres(own_data_dir / "postgres-18")
    url = await upgraded.start()
    try:
        with pytest.raises((asyncpg.InvalidPasswordError, asyncpg.ClientConfigurationError)):
            await asyncpg.connect(host="127.0.0.1", port=upgraded.port, user="postgres")
        conn = await asyncpg.connect(url)
        assert await conn.fetchval("SELECT 1") == 1
        await conn.close()
    finally:
        await upgraded.stop()


async def _start_with_trust(server: EmbeddedPostgres) -> EmbeddedPostgres:
    """The server started on its dir as an earlier release did: no securing step."""

    class Unsecured(EmbeddedPostgres):
        def secure(self) -> None:
            pass

        def client_url(self) -> str:
            return f"postgresql://postgres@127.0.0.1:{self.port}/azora"

        async def probe(self, timeout_s: float) -> None:
            conn = await asyncpg.connect(
                host="127.0.0.1", port=self.port, user="postgres", timeout=timeout_s
            )
            await conn.close()

    old = Unsecured(server.data_dir)
    await old.start()
    return old


async def test_redis_refuses_every_command_without_the_generated_password(
    own_data_dir: Path,
) -> None:
    server = EmbeddedRedis(own_data_dir / "valkey-9")
    url = await server.start()
    try:
        assert stat.S_IMODE(os.stat(server.password_path).st_mode) == 0o600
        anonymous = Redis(host="127.0.0.1", port=server.port, protocol=2)
        try:
            with pytest.raises(AuthenticationError, match="Authentication required"):
                await anonymous.set("k", "v")
            with pytest.raises(AuthenticationError, match="Authentication required"):
                await anonymous.config_get("requirepass")
        finally:
            await anonymous.aclose()
        wrong = Redis(host="127.0.0.1", port=server.port, password="guess", protocol=2)
        try:
            with pytest.raises(AuthenticationError):
                await wrong.ping()
        finally:
            await wrong.aclose()
        client = Redis.from_url(url, protocol=2)
        try:
            assert await client.set("k", "v")
        finally:
            await client.aclose()
        # Nothing on the server's command line gives the password away.
        assert server.password() not in " ".join(server.command())
    finally:
        await server.stop()
    again = EmbeddedRedis(own_data_dir / "valkey-9")
    try:
        await again.start()
        assert again.password() == server.password()  # generated once, reused after
    finally:
        await again.stop()


async def test_mongo_refuses_every_command_without_the_generated_password(
    own_data_dir: Path,
) -> None:
    """The archive holds every user's events: another local user must not read it."""
    server = EmbeddedMongo(own_data_dir / "secantus")
    url = await server.start()
    try:
        assert stat.S_IMODE(os.stat(server.password_path).st_mode) == 0o600
        owner: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(url)
        await owner.azora.events.insert_one({"_id": "1-0", "userId": "u1"})
        await owner.close()
        for guess in (f"mongodb://127.0.0.1:{server.port}/azora", _with_password(url, "guess")):
            stranger: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
                guess, serverSelectionTimeoutMS=1000
            )
            refused = (OperationFailure, ServerSelectionTimeoutError)  # the latter: bad password
            try:
                with pytest.raises(refused, match="authentication"):
                    await stranger.azora.events.find_one({})
                with pytest.raises(refused, match="authentication"):
                    await stranger.admin.command("createUser", "mine", pwd="x", roles=["root"])
            finally:
                await stranger.close()
        assert server.password() not in " ".join(server.command())
    finally:
        await server.stop()


@pytest.mark.slow  # four starts and stops of the server
async def test_a_mongo_data_dir_made_before_passwords_is_secured_at_its_next_start(
    own_data_dir: Path,
) -> None:
    """The upgrade path: an open server's data is kept, and a user someone else created
    while it was open is dropped."""
    server = EmbeddedMongo(own_data_dir / "secantus")
    await server.start()
    await server.stop()
    (server.data_dir / PROVISIONED_FILE).unlink()
    server.password_path.unlink()
    open_url = await _start_open(server)  # what an earlier release ran: no auth at all
    try:
        anyone: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(open_url)
        await anyone.azora.events.insert_one({"_id": "1-0", "userId": "u1"})
        await anyone.admin.command("dropUser", "azora")
        await anyone.admin.command("createUser", "intruder", pwd="x", roles=["root"])
        await anyone.close()
    finally:
        await server.stop()
    upgraded = EmbeddedMongo(own_data_dir / "secantus")
    url = await upgraded.start()
    try:
        owner: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(url)
        try:
            assert await owner.azora.events.count_documents({}) == 1
            users = await owner.admin.command("usersInfo")
            assert [u["user"] for u in users["users"]] == ["azora"]
        finally:
            await owner.close()
    finally:
        await upgraded.stop()


async def _start_open(server: EmbeddedMongo) -> str:
    server._auth = False
    server.before_spawn()
    return await super(EmbeddedMongo, server).start()


def _with_password(url: str, password: str) -> str:
    user, rest = url.split("@", 1)
    return f"{user.rsplit(':', 1)[0]}:{password}@{rest}"


def private_modes(root: Path) -> list[str]:
    """Every path under `root` (and `root`) that another user could read or enter."""
    loose = []
    for parent, _dirs, files in os.walk(root):
        for path in [Path(parent)] + [Path(parent) / name for name in files]:
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                continue
            allowed = 0o010 if stat.S_ISDIR(mode) and stat.S_IMODE(mode) == TRAVERSE_DIR else 0
            if mode & 0o077 & ~allowed:
                loose.append(f"{path} {stat.filemode(mode)}")
    return loose


async def test_the_data_dir_and_every_file_in_it_are_private(own_data_dir: Path) -> None:
    os.chmod(own_data_dir, 0o755)  # as a data dir of an earlier release was
    (own_data_dir / "jwt-secret").write_text("an old secret")
    os.chmod(own_data_dir / "jwt-secret", 0o644)
    settings = Settings(AZORA_DATA_DIR=own_data_dir)
    async with start_backends(settings) as urls:
        client = Redis.from_url(urls.redis, protocol=2)
        try:
            await client.set("written", "after start")
            await client.bgrewriteaof()
        finally:
            await client.aclose()
        assert private_modes(own_data_dir) == []
        password = make_url(urls.database).password
        assert password
        assert masked(urls.database) == urls.database.replace(password, "***")
    if os.geteuid() == 0:
        # Only the embedded PostgreSQL's group may pass through, to its own 0700 dirs.
        data_dir = os.stat(own_data_dir)
        assert stat.S_IMODE(data_dir.st_mode) == TRAVERSE_DIR
        assert data_dir.st_gid == os.stat(own_data_dir / "postgres-18").st_gid
        assert os.stat(own_data_dir / "postgres-18").st_uid != 0
        assert as_nobody("ls", str(own_data_dir)).returncode != 0
    else:
        assert stat.S_IMODE(os.stat(own_data_dir).st_mode) == 0o700
    assert private_modes(own_data_dir) == []


@pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL")),
    reason="a PostgreSQL given by DATABASE_URL logs where its operator says",
)
async def test_a_duplicate_email_leaves_no_personal_data_in_the_postgres_log(
    client: AsyncClient, session_data_dir: Path
) -> None:
    log = session_data_dir / "shared" / "postgres-18.log"
    email = f"dup-{os.getpid()}-{id(client)}@example.com"
    first = await client.post(
        "/api/auth/register", json={"email": email, "username": f"u{id(log)}", "password": "p" * 12}
    )
    assert first.status_code == 201, first.text
    again = await client.post(
        "/api/auth/register",
        json={"email": email, "username": f"v{id(log)}", "password": "p" * 12},
    )
    assert again.status_code == 409, again.text
    # The error itself is logged (an operator sees that it happened), never its values.
    text = log.read_text(errors="replace")
    assert "duplicate key value violates unique constraint" in text
    assert email not in text
    assert "DETAIL:" not in text
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600
