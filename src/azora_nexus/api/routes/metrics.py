"""`GET /metrics`: the node's Prometheus metrics in the text format."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from azora_nexus.api.deps import NexusDep
from azora_nexus.events.stream import STREAM_KEY
from azora_nexus.health import check_backends
from azora_nexus.nexus import Nexus

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


@router.get(
    "/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}}
)
async def metrics(nexus: NexusDep) -> Response:
    """Counters, histograms and gauges of this node (scraped by Prometheus)."""
    await refresh_gauges(nexus)
    return Response(nexus.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
