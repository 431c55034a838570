"""Wallets: one per user per currency; open one, list the caller's, read one."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from azora_nexus.auth.tokens import Principal
from azora_nexus.cache import keys
from azora_nexus.domain.access import active_user, require_owner_or_privileged, subject_user_id
from azora_nexus.domain.keyset import page_by_creation
from azora_nexus.domain.ledger.accounts import ensure_wallet
from azora_nexus.domain.ledger.models import Currency, Wallet
from azora_nexus.domain.ledger.schemas import WalletCreate, WalletPublic
from azora_nexus.domain.ledger.views import wallet_public
from azora_nexus.domain.paging import Page, PageRequest
from azora_nexus.errors import DuplicateKey, NotFound
from azora_nexus.events.outbox import add_event
from azora_nexus.sync import invalidate_after_commit

SOURCE = "wallets"


async def announce_wallet(
    session: AsyncSession, user_id: uuid.UUID, wallet_id: uuid.UUID, currency: Currency
) -> None:
    """Queue `finance.wallet.created` and the cache invalidation for a wallet just opened."""
    await add_event(
        session,
        "finance.wallet.created",
        {"walletId": str(wallet_id), "currency": currency.value},
        source=SOURCE,
        user_id=str(user_id),
    )
    invalidate_after_commit(session, [keys.user_wallets(user_id)])


async def open_wallet(session: AsyncSession, user_id: uuid.UUID, currency: Currency) -> uuid.UUID:
    """The id of the user's wallet in `currency`, opened (and announced) when it had none; in
    the caller's transaction."""
    wallet_id, created = await ensure_wallet(session, user_id, currency)
    if created:
        await announce_wallet(session, user_id, wallet_id, currency)
    return wallet_id


async def create_wallet(
    session: AsyncSession, body: WalletCreate, *, actor: Principal
) -> WalletPublic:
    """The caller's new wallet in `body.currency`; DuplicateKey (409) when it has one."""
    user_id = subject_user_id(actor)
    async with session.begin():
        await active_user(session, user_id)
        wallet_id, created = await ensure_wallet(session, user_id, body.currency)
        if not created:
            raise DuplicateKey(f"you have a {body.currency} wallet already: {wallet_id}")
        await announce_wallet(session, user_id, wallet_id, body.currency)
        wallet = await session.get(Wallet, wallet_id)
        assert wallet is not None
        return wallet_public(wallet)


async def list_wallets(
    session: AsyncSession, page: PageRequest, *, actor: Principal
) -> Page[WalletPublic]:
    """The caller's wallets, oldest first."""
    user_id = subject_user_id(actor)
    query = select(Wallet).where(Wallet.user_id == user_id)
    return await page_by_creation(
        session, query, (Wallet.created_at, Wallet.id), page, wallet_public
    )


async def find_wallet(session: AsyncSession, wallet_id: uuid.UUID, *, actor: Principal) -> Wallet:
    """A wallet its owner (or an admin/service) may see; NotFound or Forbidden otherwise."""
    wallet = await session.get(Wallet, wallet_id)
    if wallet is None:
        raise NotFound(f"no wallet {wallet_id}")
    require_owner_or_privileged(actor, wallet.user_id, "wallet")
    return wallet


async def get_wallet(
    session: AsyncSession, wallet_id: uuid.UUID, *, actor: Principal
) -> WalletPublic:
    """One wallet with its balance, for its owner or an admin/service."""
    async with session.begin():
        return wallet_public(await find_wallet(session, wallet_id, actor=actor))
