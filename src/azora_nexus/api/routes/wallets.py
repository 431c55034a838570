"""`/api/wallets`: open a wallet, list and read the caller's, transfer, and history."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from azora_nexus.api.deps import CurrentPrincipal, NexusDep, SessionDep
from azora_nexus.api.paging import PageDep
from azora_nexus.api.responses import errors
from azora_nexus.domain.ledger import service, transfers
from azora_nexus.domain.ledger.schemas import (
    TransactionPublic,
    TransferRequest,
    WalletCreate,
    WalletEntry,
    WalletPublic,
)
from azora_nexus.domain.paging import Page

router = APIRouter(prefix="/api/wallets", tags=["wallets"])


@router.post("", status_code=201, responses=errors(403, 409))
async def create_wallet(
    body: WalletCreate, session: SessionDep, actor: CurrentPrincipal
) -> WalletPublic:
    """The caller's wallet in one currency; 409 when it has one already."""
    return await service.create_wallet(session, body, actor=actor)


@router.get("", responses=errors(403))
async def list_wallets(
    session: SessionDep, page: PageDep, actor: CurrentPrincipal
) -> Page[WalletPublic]:
    """The caller's wallets, oldest first."""
    return await service.list_wallets(session, page, actor=actor)


@router.post("/transfer", status_code=201, responses=errors(403, 404, 409))
async def transfer(
    body: TransferRequest, nexus: NexusDep, actor: CurrentPrincipal
) -> TransactionPublic:
    """Move money out of the caller's wallet; the same idempotency key posts once."""
    return await transfers.transfer(nexus.db.sessions, body, actor=actor)


@router.get("/{wallet_id}", responses=errors(403, 404))
async def get_wallet(
    wallet_id: uuid.UUID, session: SessionDep, actor: CurrentPrincipal
) -> WalletPublic:
    """One wallet with its balance (its owner or an admin)."""
    return await service.get_wallet(session, wallet_id, actor=actor)


@router.get("/{wallet_id}/transactions", responses=errors(403, 404))
async def wallet_history(
    wallet_id: uuid.UUID, session: SessionDep, page: PageDep, actor: CurrentPrincipal
) -> Page[WalletEntry]:
    """What each transaction did to the wallet, newest first."""
    return await transfers.wallet_history(session, wallet_id, page, actor=actor)
