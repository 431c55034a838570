"""Contracts: accepting an application holds the budget in escrow; releasing pays the worker.

Locks are taken jobs → applications (accept) or contracts (release), then the ledger's
accounts in its own fixed order, so concurrent accepts and releases never deadlock: two
accepts on one job queue on the job's row and the second finds it closed.
"""

from __future__ import annotations

import hashlib
import uuid

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from azora_nexus.auth.tokens import Principal
from azora_nexus.cache import keys
from azora_nexus.domain.access import get_or_raise, require_owner_or_privileged
from azora_nexus.domain.ledger.accounts import system_account_id
from azora_nexus.domain.ledger.amounts import format_amount
from azora_nexus.domain.ledger.models import (
    Currency,
    SystemAccountKind,
    TransactionKind,
    Wallet,
)
from azora_nexus.domain.ledger.postings import Posting, post_transaction
from azora_nexus.domain.ledger.service import open_wallet
from azora_nexus.domain.marketplace.models import (
    Application,
    ApplicationStatus,
    Contract,
    ContractStatus,
    Job,
    JobStatus,
)
from azora_nexus.domain.marketplace.schemas import ContractPublic
from azora_nexus.domain.users.models import User
from azora_nexus.errors import Conflict, InsufficientFunds
from azora_nexus.events.outbox import add_event
from azora_nexus.sync import invalidate_after_commit

SOURCE = "marketplace"


def contract_public(contract: Contract) -> ContractPublic:
    return ContractPublic(
        id=contract.id,
        job_id=contract.job_id,
        application_id=contract.application_id,
        poster_id=contract.poster_id,
        worker_id=contract.worker_id,
        amount=format_amount(contract.amount, contract.currency),
        currency=contract.currency,
        status=contract.status,
    )


def request_hash(*parts: object) -> str:
    """A fingerprint of what a posting is for, so its idempotency key cannot be reused."""
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


async def accept(
    session: AsyncSession, application_id: uuid.UUID, *, actor: Principal
) -> ContractPublic:
    """The job closes, the contract is signed and the budget moves into escrow, at once."""
    async with session.begin():
        found = await get_or_raise(session, Application, application_id)
        job = await get_or_raise(session, Job, found.job_id, lock=True)
        require_owner_or_privileged(actor, job.poster_id, "job")
        if job.status is not JobStatus.OPEN:
            raise Conflict(f"job {job.id} is {job.status.value}, not open")
        application = await get_or_raise(session, Application, application_id, lock=True)
        if application.status is not ApplicationStatus.PENDING:
            raise Conflict(f"application {application_id} is {application.status.value}")
        worker = await session.get(User, application.applicant_id)
        if worker is None or not worker.is_active:
            raise Conflict(f"the applicant of {application_id} has closed their account")
        wallet_id = await _wallet_of(session, job.poster_id, job.currency)
        escrow_id = await system_account_id(session, SystemAccountKind.ESCROW, job.currency)
        hold = await post_transaction(
            session,
            kind=TransactionKind.ESCROW_HOLD,
            idempotency_key=f"escrow:hold:{job.id}",
            request_hash=request_hash(job.id, application.id, job.budget, job.currency),
            postings=[
                Posting(job.currency, job.budget.copy_negate(), wallet_id=wallet_id),
                Posting(job.currency, job.budget, system_account_id=escrow_id),
            ],
            memo=f"escrow for job {job.id}",
            created_by=actor.user_id,
        )
        public = contract_public(await _sign(session, job, application, hold.id))
        await _tell_both(session, "marketplace.contract.signed", public, hold.id)
        invalidate_after_commit(session, [keys.wallet(wallet_id), keys.user_wallets(job.poster_id)])
        return public


async def release(
    session: AsyncSession, contract_id: uuid.UUID, *, actor: Principal
) -> ContractPublic:
    """The escrow goes to the worker's wallet in the contract's currency, once."""
    async with session.begin():
        contract = await get_or_raise(session, Contract, contract_id, lock=True)
        require_owner_or_privileged(actor, contract.poster_id, "contract")
        if contract.status is not ContractStatus.ESCROWED:
            raise Conflict(f"contract {contract_id} is {contract.status.value} already")
        wallet_id = await open_wallet(session, contract.worker_id, contract.currency)
        escrow_id = await system_account_id(session, SystemAccountKind.ESCROW, contract.currency)
        paid = await post_transaction(
            session,
            kind=TransactionKind.ESCROW_RELEASE,
            idempotency_key=f"escrow:release:{contract.id}",
            request_hash=request_hash(contract.id, contract.amount, contract.currency),
            postings=[
                Posting(
                    contract.currency, contract.amount.copy_negate(), system_account_id=escrow_id
                ),
                Posting(contract.currency, contract.amount, wallet_id=wallet_id),
            ],
            memo=f"payment for job {contract.job_id}",
            created_by=actor.user_id,
        )
        contract.status = ContractStatus.RELEASED
        contract.release_transaction_id = paid.id
        contract.released_at = func.now()
        await session.flush()
        public = contract_public(contract)
        await _tell_both(session, "marketplace.payment.released", public, paid.id)
        invalidate_after_commit(
            session, [keys.wallet(wallet_id), keys.user_wallets(contract.worker_id)]
        )
        return public


async def _sign(
    session: AsyncSession, job: Job, application: Application, hold_id: uuid.UUID
) -> Contract:
    """Close the job, accept this application and turn down the others, sign the contract."""
    job.status = JobStatus.CLOSED
    application.status = ApplicationStatus.ACCEPTED
    await session.execute(
        update(Application)
        .where(Application.job_id == job.id, Application.id != application.id)
        .where(Application.status == ApplicationStatus.PENDING)
        .values(status=ApplicationStatus.REJECTED)
    )
    contract = Contract(
        job_id=job.id,
        application_id=application.id,
        poster_id=job.poster_id,
        worker_id=application.applicant_id,
        amount=job.budget,
        currency=job.currency,
        status=ContractStatus.ESCROWED,
        escrow_transaction_id=hold_id,
    )
    session.add(contract)
    await session.flush()
    return contract


async def _wallet_of(session: AsyncSession, user_id: uuid.UUID, currency: Currency) -> uuid.UUID:
    """The user's wallet in `currency`; without one there is nothing to pay from."""
    wallet_id = await session.scalar(
        select(Wallet.id).where(Wallet.user_id == user_id, Wallet.currency == currency)
    )
    if wallet_id is None:
        raise InsufficientFunds(f"the poster has no {currency.value} wallet to pay from")
    return wallet_id


async def _tell_both(
    session: AsyncSession, event_type: str, contract: ContractPublic, transaction_id: uuid.UUID
) -> None:
    """One event to the poster and one to the worker: each concerns them, nobody else."""
    payload = {
        "contractId": str(contract.id),
        "jobId": str(contract.job_id),
        "applicationId": str(contract.application_id),
        "posterId": str(contract.poster_id),
        "workerId": str(contract.worker_id),
        "amount": contract.amount,
        "currency": contract.currency.value,
        "transactionId": str(transaction_id),
    }
    for user_id in (contract.poster_id, contract.worker_id):
        await add_event(session, event_type, payload, source=SOURCE, user_id=str(user_id))
