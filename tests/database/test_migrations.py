"""Migrations build exactly the schema the models describe, and take it down again cleanly."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, make_url

from azora_nexus.backends import BackendUrls
from azora_nexus.database.engine import create_engine
from azora_nexus.database.migrate import alembic_config, downgrade, upgrade
from azora_nexus.database.partitions import is_partition_of, skip_partitions
from azora_nexus.domain.tables import metadata

MODEL_TABLES = set(metadata.tables)


def asyncpg_dsn(url: str, database: str | None = None) -> str:
    """`url` as asyncpg takes it, pointing at `database` if given."""
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


@asynccontextmanager
async def empty_database(server_url: str) -> AsyncIterator[str]:
    """The URL of a new database with nothing in it, dropped on exit."""
    name = f"azora_empty_{uuid.uuid4().hex[:12]}"
    server = await asyncpg.connect(asyncpg_dsn(server_url, "postgres"))
    try:
        await server.execute(f'CREATE DATABASE "{name}"')
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
        await server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await server.close()


@pytest.fixture
async def empty_database_url(backends: BackendUrls) -> AsyncIterator[str]:
    """A database of this test's own, not cloned from the migrated template."""
    async with empty_database(backends.database) as url:
        yield url


@pytest.fixture
async def created_database_url(backends: BackendUrls) -> AsyncIterator[str]:
    """A database built straight from the models by `metadata.create_all`, no Alembic."""
    async with empty_database(backends.database) as url:
        engine = create_engine(url, pool_size=1)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(metadata.create_all)
        finally:
            await engine.dispose()
        yield url


async def inspect_schema(url: str, look: Any) -> Any:
    """`look(sync_connection)` run against the database at `url`."""
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(look)
    finally:
        await engine.dispose()


def table_names(conn: Connection) -> set[str]:
    """Tables, less the partitions made outside the models (the outbox's)."""
    names = set(inspect(conn).get_table_names())
    return {n for n in names if not any(is_partition_of(t, n) for t in MODEL_TABLES)}


def sequence_names(conn: Connection) -> set[str]:
    return set(inspect(conn).get_sequence_names())


def schema_differences(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(
        conn,
        opts={
            "compare_type": True,
            "compare_server_default": True,
            "include_name": skip_partitions(MODEL_TABLES),
        },
    )
    return list(compare_metadata(context, metadata))


# Every constraint, index and column of the public schema, as PostgreSQL itself prints them.
CATALOGUE_SQL = """
SELECT 'constraint', conrelid::regclass::text, conname, pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL
SELECT 'index', tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'column', table_name, column_name,
       concat_ws(' ', data_type, character_maximum_length, numeric_precision, numeric_scale,
                 is_nullable, column_default, is_identity, identity_generation)
  FROM information_schema.columns WHERE table_schema = 'public'
"""


async def catalogue(url: str) -> set[tuple[str, str, str, str]]:
    """The public schema's catalogue at `url`, less Alembic's own bookkeeping table."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await conn.fetch(CATALOGUE_SQL)
    finally:
        await conn.close()
    return {tuple(row) for row in rows if row[1] != "alembic_version"}


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_current_head()
    assert head is not None
    return head


async def test_upgrade_downgrade_upgrade_leaves_schema_equal_to_models(
    empty_database_url: str,
) -> None:
    await upgrade(empty_database_url)
    assert await inspect_schema(empty_database_url, table_names) == MODEL_TABLES | {
        "alembic_version"
    }

    await downgrade(empty_database_url, "base")
    assert await inspect_schema(empty_database_url, table_names) == {"alembic_version"}
    # Identity columns' sequences go with their tables; nothing else is left behind.
    assert await inspect_schema(empty_database_url, sequence_names) == set()

    await upgrade(empty_database_url)
    assert await inspect_schema(empty_database_url, schema_differences) == []


async def test_migrated_schema_equals_the_one_create_all_builds(
    database_url: str, created_database_url: str
) -> None:
    # Autogenerate skips CHECK constraints and partial-index predicates; the catalogue
    # (constraint and index definitions, columns) catches any drift in those too.
    migrated = await catalogue(database_url)
    assert migrated == await catalogue(created_database_url)
    assert (
        "constraint",
        "ledger_postings",
        "ck_ledger_postings_exactly_one_account",
        "CHECK (((wallet_id IS NULL) <> (system_account_id IS NULL)))",
    ) in migrated


@pytest.mark.slow
async def test_azora_migrate_brings_an_empty_database_to_head(
    empty_database_url: str, tmp_path: Path
) -> None:
    azora = Path(sys.executable).with_name("azora")
    env = {**os.environ, "DATABASE_URL": empty_database_url, "AZORA_DATA_DIR": str(tmp_path)}
    process = await asyncio.create_subprocess_exec(
        str(azora),
        "migrate",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode == 0, output.decode()
    assert "schema at head" in output.decode()

    assert await inspect_schema(empty_database_url, table_names) == MODEL_TABLES | {
        "alembic_version"
    }
    conn = await asyncpg.connect(asyncpg_dsn(empty_database_url))
    try:
        assert await conn.fetchval("SELECT version_num FROM alembic_version") == head_revision()
    finally:
        await conn.close()


def outbox_indexes(conn: Connection) -> dict[str | None, Any]:
    return {
        index["name"]: index.get("dialect_options", {}).get("postgresql_where")
        for index in inspect(conn).get_indexes("outbox")
    }


async def test_outbox_index_covers_only_unpublished_rows(database_url: str) -> None:
    # Autogenerate ignores partial-index predicates; the relay's scan depends on this one.
    assert await inspect_schema(database_url, outbox_indexes) == {
        "ix_outbox_unpublished": "(published_at IS NULL)"
    }


async def test_partitioning_the_outbox_keeps_its_rows_and_continues_its_ids(
    empty_database_url: str,
) -> None:
    await upgrade(empty_database_url, "0002")
    conn = await asyncpg.connect(asyncpg_dsn(empty_database_url))
    try:
        await conn.execute(
            "INSERT INTO outbox (type, payload, source, timestamp_ms, stream_id, published_at)"
            " VALUES ('system.alert', '{}', 't', 1, '1-0', now()), ('system.alert', '{}', 't', 2,"
            " NULL, NULL)"
        )
        await upgrade(empty_database_url)
        rows = await conn.fetch("SELECT id, stream_id FROM outbox_default ORDER BY id")
        assert [(r["id"], r["stream_id"]) for r in rows] == [(1, "1-0"), (2, None)]
        new_id = await conn.fetchval(
            "INSERT INTO outbox (type, payload, source, timestamp_ms)"
            " VALUES ('system.alert', '{}', 't', 3) RETURNING id"
        )
        assert new_id == 3
    finally:
        await conn.close()
