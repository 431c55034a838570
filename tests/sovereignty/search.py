"""Searching every backend for strings: every table and column, collection, key and value."""

from __future__ import annotations

from typing import Any

import asyncpg
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from azora_nexus.events.relay import asyncpg_dsn

_COLUMNS = """
SELECT table_schema, table_name, column_name FROM information_schema.columns
WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
ORDER BY table_schema, table_name, ordinal_position
"""


def _found(text: str, needles: tuple[str, ...]) -> list[str]:
    lowered = text.lower()
    return [n for n in needles if n.lower() in lowered]


async def search_postgres(database_url: str, needles: tuple[str, ...]) -> list[str]:
    """`schema.table.column: needle` for every column (cast to text) of every table holding one."""
    hits: list[str] = []
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        for schema, table, column in await conn.fetch(_COLUMNS):
            for needle in needles:
                count = await conn.fetchval(
                    f'SELECT count(*) FROM "{schema}"."{table}" '
                    f'WHERE strpos(lower(CAST("{column}" AS text)), lower($1)) > 0',
                    needle,
                )
                if count:
                    hits.append(f"{schema}.{table}.{column}: {needle}")
    finally:
        await conn.close()
    return hits


async def search_mongo(
    database: AsyncDatabase[dict[str, Any]], needles: tuple[str, ...]
) -> list[str]:
    """`collection: document` for every document whose text holds a needle."""
    hits: list[str] = []
    for name in await database.list_collection_names():
        async for document in database[name].find({}):
            for needle in _found(repr(document), needles):
                hits.append(f"{name}: {needle} in {document!r}")
    return hits


async def _values(redis: Redis, key: bytes) -> list[Any]:
    found = await redis.type(key)
    kind = found.decode() if isinstance(found, bytes) else found
    if kind == "string":
        return [await redis.get(key)]
    if kind == "hash":
        return [await redis.hgetall(key)]
    if kind == "list":
        return [await redis.lrange(key, 0, -1)]
    if kind == "set":
        return [await redis.smembers(key)]
    if kind == "zset":
        return [await redis.zrange(key, 0, -1, withscores=True)]
    if kind == "stream":
        groups = await redis.xinfo_groups(key)
        return [await redis.xrange(key, "-", "+"), groups]
    raise AssertionError(f"unexpected Redis type {kind} of {key!r}")


async def search_redis(redis: Redis, needles: tuple[str, ...]) -> list[str]:
    """`key: needle` for every key whose name or value (read by its type) holds a needle."""
    hits: list[str] = []
    async for key in redis.scan_iter(count=1000):
        text = repr(key) + repr(await _values(redis, key))
        for needle in _found(text, needles):
            hits.append(f"{key!r}: {needle}")
    return hits
