"""`GET /metrics`: the node's Prometheus metrics in the text format."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from azora_nexus.api.deps import NexusDep
from azora_nexus.events.archive import Archive
from azora_nexus.events.stream import STREAM_KEY
from azora_nexus.health import check_backends
from azora_nexus.metrics import NodeMetrics
from azora_nexus.nexus import Nexus
from azora_nexus.storage import (
    StoreUsage,
    archive_usage,
    outbox_usage,
    stream_usage,
    wal_archive_root,
    wal_usage,
)

router = APIRouter(tags=["operations"])

OUTBOX_LAG_SQL = text(
    "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0) "
    "FROM outbox WHERE published_at IS NULL"
)


async def refresh_gauges(nexus: Nexus) -> None:
    """Read the state gauges now; a backend that does not answer is reported down."""
    checks = await check_backends(
        nexus.db, nexus.redis, nexus.documents, nexus.settings.backend_timeout_s
    )
    metrics = nexus.metrics
    up = {check.name: check.ok for check in checks}
    for check in checks:
        metrics.backend_up.labels(check.name).set(1 if check.ok else 0)
        metrics.backend_latency.labels(check.name).set(check.latency_ms / 1000)
    if up.get("postgres"):
        async with nexus.db.engine.connect() as conn:
            rows, age_s = (await conn.execute(OUTBOX_LAG_SQL)).one()
        metrics.outbox_lag_rows.set(rows)
        metrics.outbox_lag_seconds.set(float(age_s))
    if up.get("redis"):
        metrics.stream_length.set(await nexus.redis.xlen(STREAM_KEY))
    for usage in await storage(nexus, up):
        record(metrics, usage)


async def storage(nexus: Nexus, up: dict[str, bool]) -> list[StoreUsage]:
    """What every store that answered keeps."""
    settings = nexus.settings
    found = []
    if up.get("postgres"):
        async with nexus.db.engine.connect() as conn:
            found.append(await outbox_usage(conn, settings.outbox_retention_s))
    root = wal_archive_root(settings, nexus.urls.database)
    if root is not None:
        found.append(await wal_usage(root, settings.wal_retention_s))
    if up.get("redis"):
        found.append(await stream_usage(nexus.redis, settings.stream_maxlen))
    if up.get("mongo"):
        found.append(await archive_usage(Archive(nexus.documents), settings.archive_retention_s))
    return found


def record(metrics: NodeMetrics, usage: StoreUsage) -> None:
    store = usage.store
    if usage.bytes is not None:
        metrics.storage_bytes.labels(store).set(usage.bytes)
    if usage.items is not None:
        metrics.storage_items.labels(store).set(usage.items)
    age_s = usage.oldest_age_s()
    metrics.storage_oldest_age.labels(store).set(0.0 if age_s is None else age_s)
    if usage.retention_s is not None:
        metrics.storage_retention.labels(store).set(usage.retention_s)


@router.get(
    "/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}}
)
async def metrics(nexus: NexusDep) -> Response:
    """Counters, histograms and gauges of this node (scraped by Prometheus)."""
    await refresh_gauges(nexus)
    return Response(nexus.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
