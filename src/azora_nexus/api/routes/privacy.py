"""`/api/users/{id}/export` and `DELETE /api/users/{id}`: a user's data, taken out or erased."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request, Response

from azora_nexus.api.deps import CurrentPrincipal, NexusDep
from azora_nexus.api.responses import errors
from azora_nexus.domain.privacy.erasure import erase_user
from azora_nexus.domain.privacy.export import export_user
from azora_nexus.domain.privacy.schemas import ErasureRequest
from azora_nexus.domain.privacy.traces import TraceStores

router = APIRouter(prefix="/api/users", tags=["privacy"])


@router.get("/{user_id}/export", responses=errors(403, 404))
async def export(user_id: uuid.UUID, nexus: NexusDep, actor: CurrentPrincipal) -> dict[str, Any]:
    """Everything Nexus holds about the user, as one document (the user or an admin)."""
    return await export_user(nexus.db, nexus.events, nexus.documents, user_id, actor=actor)


@router.delete("/{user_id}", status_code=204, responses=errors(403, 404, 429))
async def erase(
    user_id: uuid.UUID,
    request: Request,
    nexus: NexusDep,
    actor: CurrentPrincipal,
    body: ErasureRequest | None = None,
) -> Response:
    """Erase the user's personal data: the user with `{password}` (403 when it is wrong),
    or an admin without one. The ledger keeps its amounts under an anonymous account."""
    stores = TraceStores(
        db=nexus.db,
        redis=nexus.redis,
        documents=nexus.documents,
        cache_prefix=nexus.cache.options.prefix,
        subject_key=nexus.subject_key,
    )
    await erase_user(
        stores,
        user_id,
        actor=actor,
        password=body.password if body else None,
        address=request.client.host if request.client else "unknown",
        erased_users=nexus.erased,
        passwords=nexus.passwords,
    )
    return Response(status_code=204)
