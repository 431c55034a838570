"""Mongo steps of a backup and a restore: each collection as a `.bson` file, its indexes aside."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bson
from pymongo import AsyncMongoClient, IndexModel

from azora_nexus.documents.client import create_mongo_client

BATCH = 1000


async def dump(uri: str, target: Path) -> tuple[dict[str, int], dict[str, list[dict[str, Any]]]]:
    """Write every collection to `target/<name>.bson`; returns counts and index specs."""
    target.mkdir(parents=True, exist_ok=True)
    client = create_mongo_client(uri, timeout_s=5)
    counts: dict[str, int] = {}
    indexes: dict[str, list[dict[str, Any]]] = {}
    try:
        database = client.get_default_database("azora")
        for name in sorted(await database.list_collection_names()):
            collection = database[name]
            count = 0
            with (target / f"{name}.bson").open("wb") as out:
                async for document in collection.find({}, sort=[("_id", 1)]):
                    out.write(bson.encode(document))
                    count += 1
            counts[name] = count
            indexes[name] = [
                {
                    "key": list(spec["key"].items()),
                    "options": {k: v for k, v in spec.items() if k not in ("key", "v", "ns")},
                }
                async for spec in await collection.list_indexes()
                if spec["name"] != "_id_"
            ]
    finally:
        await client.close()
    return counts, indexes


async def load(uri: str, source: Path, indexes: dict[str, list[dict[str, Any]]]) -> None:
    """Insert every dumped document and recreate the indexes."""
    client: AsyncMongoClient[dict[str, Any]] = create_mongo_client(uri, timeout_s=5)
    try:
        database = client.get_default_database("azora")
        for path in sorted(source.glob("*.bson")):
            collection = database[path.stem]
            with path.open("rb") as handle:
                batch: list[dict[str, Any]] = []
                for document in bson.decode_file_iter(handle):
                    batch.append(document)
                    if len(batch) == BATCH:
                        await collection.insert_many(batch)
                        batch = []
                if batch:
                    await collection.insert_many(batch)
            specs = indexes.get(path.stem, [])
            if specs:
                await collection.create_indexes(
                    [IndexModel(spec["key"], **spec["options"]) for spec in specs]
                )
    finally:
        await client.close()


async def collection_counts(uri: str) -> dict[str, int]:
    client: AsyncMongoClient[dict[str, Any]] = create_mongo_client(uri, timeout_s=5)
    try:
        database = client.get_default_database("azora")
        return {
            name: await database[name].count_documents({})
            for name in sorted(await database.list_collection_names())
        }
    finally:
        await client.close()
