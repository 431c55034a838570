"""`/api/rewards`: mining rewards and UBI distributions (admin or service callers)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from azora_nexus.api.deps import NexusDep, PrivilegedPrincipal, SessionDep
from azora_nexus.api.responses import errors
from azora_nexus.domain.ledger import rewards, ubi
from azora_nexus.domain.ledger.schemas import (
    DistributionPublic,
    MiningReward,
    TransactionPublic,
    UbiRequest,
)

router = APIRouter(prefix="/api/rewards", tags=["rewards"])


@router.post("/mining", status_code=201, responses=errors(403, 404, 409))
async def reward_mining(
    body: MiningReward, session: SessionDep, actor: PrivilegedPrincipal
) -> TransactionPublic:
    """Credit a user's wallet from the mining pool."""
    return await rewards.reward_mining(session, body, actor=actor)


@router.post("/ubi", status_code=202, responses=errors(403, 409))
async def distribute_ubi(
    body: UbiRequest, session: SessionDep, nexus: NexusDep, actor: PrivilegedPrincipal
) -> DistributionPublic:
    """Start crediting every active user once per idempotency key, as a job: answers the
    distribution at once (the same one again for the same key and request); follow it at
    `GET /api/rewards/distributions/{id}`."""
    distribution = await ubi.start_distribution(session, body, created_by=actor.user_id)
    nexus.payouts.wake()
    return distribution


@router.get("/distributions/{distribution_id}", responses=errors(403, 404))
async def get_distribution(
    distribution_id: uuid.UUID, session: SessionDep, actor: PrivilegedPrincipal
) -> DistributionPublic:
    """A distribution's status (running, completed, failed), counts and progress."""
    return await ubi.get_distribution(session, distribution_id)
