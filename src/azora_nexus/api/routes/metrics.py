"""`GET /metrics`: the node's Prometheus metrics in the text format."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from azora_nexus.api.deps import NexusDep
from azora_nexus.metrics import exposition, refresh_gauges

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}}
)
async def metrics(nexus: NexusDep, request: Request) -> Response:
    """Counters, histograms and gauges of this node (scraped by Prometheus)."""
    realtime = getattr(request.app.state, "realtime", None)
    sockets = len(realtime.registry.sockets) if realtime is not None else 0
    await refresh_gauges(nexus, sockets)
    return Response(exposition(nexus.metrics), media_type=CONTENT_TYPE_LATEST)
