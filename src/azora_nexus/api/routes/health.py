"""`GET /health`: every backend queried for real, each within a short timeout."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from azora_nexus.api.deps import NexusDep
from azora_nexus.health import check_backends

router = APIRouter(tags=["health"])


@router.get("/health", responses={503: {"description": "a backend is down"}})
async def health(nexus: NexusDep) -> JSONResponse:
    """200 when PostgreSQL, Redis and MongoDB all answer; 503 naming those that do not."""
    checks = await check_backends(
        nexus.db, nexus.redis, nexus.documents, nexus.settings.backend_timeout_s
    )
    body: dict[str, Any] = {
        "status": "ok" if all(c.ok for c in checks) else "unavailable",
        "checks": {
            c.name: {"ok": c.ok, "latencyMs": c.latency_ms}
            | ({"error": c.error} if c.error else {})
            for c in checks
        },
    }
    down = [c for c in checks if not c.ok]
    if down:
        body["error"] = {
            "code": "backend_unavailable",
            "message": "; ".join(f"{c.name} is down: {c.error}" for c in down),
        }
    return JSONResponse(body, status_code=503 if down else 200)
