"""`/api/applications`: the job's poster accepts one application."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from azora_nexus.api.deps import CurrentPrincipal, SessionDep
from azora_nexus.api.responses import errors
from azora_nexus.domain.marketplace import escrow
from azora_nexus.domain.marketplace.schemas import ContractPublic

router = APIRouter(prefix="/api/applications", tags=["marketplace"])


@router.post("/{application_id}/accept", responses=errors(403, 404, 409))
async def accept(
    application_id: uuid.UUID, session: SessionDep, actor: CurrentPrincipal
) -> ContractPublic:
    """The contract, signed: the job closes and its budget is held in escrow."""
    return await escrow.accept(session, application_id, actor=actor)
