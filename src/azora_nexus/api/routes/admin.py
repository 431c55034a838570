"""`/api/admin/users` and `/api/admin/wallets`: read-only lists for admins (the live console)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from azora_nexus.api.deps import SessionDep
from azora_nexus.api.paging import PageDep
from azora_nexus.api.responses import errors
from azora_nexus.api.routes.cache import AdminPrincipal
from azora_nexus.domain.keyset import page_by_creation
from azora_nexus.domain.ledger.models import Wallet
from azora_nexus.domain.ledger.schemas import WalletPublic
from azora_nexus.domain.ledger.views import wallet_public
from azora_nexus.domain.paging import Page
from azora_nexus.domain.users.models import User
from azora_nexus.domain.users.schemas import UserPublic
from azora_nexus.domain.users.service import public_user

router = APIRouter(prefix="/api/admin", tags=["admin"])


@router.get("/users", responses=errors(403))
async def list_users(session: SessionDep, page: PageDep, _: AdminPrincipal) -> Page[UserPublic]:
    """Every active user with profile, oldest first (erased accounts are not listed)."""
    query = select(User).where(User.is_active).options(selectinload(User.profile))
    return await page_by_creation(session, query, (User.created_at, User.id), page, public_user)


@router.get("/wallets", responses=errors(403))
async def list_wallets(
    session: SessionDep,
    page: PageDep,
    _: AdminPrincipal,
    user_id: Annotated[uuid.UUID | None, Query(alias="userId")] = None,
) -> Page[WalletPublic]:
    """Every wallet with its balance (or one user's with `userId`), oldest first."""
    query = select(Wallet)
    if user_id is not None:
        query = query.where(Wallet.user_id == user_id)
    return await page_by_creation(
        session, query, (Wallet.created_at, Wallet.id), page, wallet_public
    )
