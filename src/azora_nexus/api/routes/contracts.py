"""`/api/contracts`: the poster releases the escrow to the worker."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from azora_nexus.api.deps import CurrentPrincipal, SessionDep
from azora_nexus.api.responses import errors
from azora_nexus.domain.marketplace import escrow
from azora_nexus.domain.marketplace.schemas import ContractPublic

router = APIRouter(prefix="/api/contracts", tags=["marketplace"])


@router.post("/{contract_id}/release", responses=errors(403, 404, 409))
async def release(
    contract_id: uuid.UUID, session: SessionDep, actor: CurrentPrincipal
) -> ContractPublic:
    """The contract with `status: "released"`: the worker has been paid."""
    return await escrow.release(session, contract_id, actor=actor)
