"""`GET /metrics`: the node's Prometheus metrics in the text format."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from azora_nexus.api.deps import NexusDep
from azora_nexus.events.stream import STREAM_KEY
from azora_nexus.health import check_backends
from azora_nexus.metrics import (
    BACKEND_LATENCY,
    BACKEND_UP,
    OUTBOX_LAG_ROWS,
    OUTBOX_LAG_SECONDS,
    STREAM_LENGTH,
    exposition,
)
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
    up = {check.name: check.ok for check in checks}
    for check in checks:
        BACKEND_UP.labels(check.name).set(1 if check.ok else 0)
        BACKEND_LATENCY.labels(check.name).set(check.latency_ms / 1000)
    if up.get("postgres"):
        async with nexus.db.engine.connect() as conn:
            rows, age_s = (await conn.execute(OUTBOX_LAG_SQL)).one()
        OUTBOX_LAG_ROWS.set(rows)
        OUTBOX_LAG_SECONDS.set(float(age_s))
    if up.get("redis"):
        STREAM_LENGTH.set(await nexus.redis.xlen(STREAM_KEY))


@router.get(
    "/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}}
)
async def metrics(nexus: NexusDep) -> Response:
    """Counters, histograms and gauges of this node (scraped by Prometheus)."""
    await refresh_gauges(nexus)
    return Response(exposition(nexus.metrics), media_type=CONTENT_TYPE_LATEST)
