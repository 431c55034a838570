"""`/api/rewards`: mining rewards and UBI distributions (admin or service callers)."""

from __future__ import annotations

from fastapi import APIRouter

from azora_nexus.api.deps import NexusDep, PrivilegedPrincipal, SessionDep
from azora_nexus.api.responses import errors
from azora_nexus.domain.ledger import rewards, ubi
from azora_nexus.domain.ledger.schemas import MiningReward, TransactionPublic, UbiRequest, UbiResult

router = APIRouter(prefix="/api/rewards", tags=["rewards"])


@router.post("/mining", status_code=201, responses=errors(403, 404, 409))
async def reward_mining(
    body: MiningReward, session: SessionDep, actor: PrivilegedPrincipal
) -> TransactionPublic:
    """Credit a user's wallet from the mining pool."""
    return await rewards.reward_mining(session, body, actor=actor)


@router.post("/ubi", responses=errors(403, 409))
async def distribute_ubi(
    body: UbiRequest, nexus: NexusDep, actor: PrivilegedPrincipal
) -> UbiResult:
    """Credit every active user once per idempotency key; answers how many were paid."""
    return await ubi.distribute_ubi(nexus.db, body, created_by=actor.user_id)
