"""The migrated schema refuses what must never be stored and deletes what belongs to a parent.

Plain SQL through asyncpg: these are the database's own guarantees, which hold whatever
code (ours, a script, psql) writes the rows.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from asyncpg.exceptions import (
    CheckViolationError,
    ForeignKeyViolationError,
    RestrictViolationError,
    UniqueViolationError,
)
from sqlalchemy.engine import make_url

Connection = Any  # asyncpg ships no type hints

# ON DELETE RESTRICT answers 23001 restrict_violation from PostgreSQL 18 on, 23503 before.
STILL_REFERENCED = (RestrictViolationError, ForeignKeyViolationError)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Connection]:
    """A raw connection to this test's migrated database."""
    conn = await asyncpg.connect(
        make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    yield conn
    await conn.close()


async def add_user(db: Connection, name: str = "ada") -> uuid.UUID:
    user_id: uuid.UUID = await db.fetchval(
        "INSERT INTO users (email, username, password_hash) VALUES ($1, $2, 'hash') RETURNING id",
        f"{name}@example.com",
        name,
    )
    return user_id


async def add_wallet(db: Connection, user_id: uuid.UUID, currency: str = "AZR") -> uuid.UUID:
    wallet_id: uuid.UUID = await db.fetchval(
        "INSERT INTO wallets (user_id, currency) VALUES ($1, $2) RETURNING id", user_id, currency
    )
    return wallet_id


async def add_system_account(db: Connection, kind: str = "mining_pool") -> uuid.UUID:
    account_id: uuid.UUID = await db.fetchval(
        "INSERT INTO system_accounts (kind, currency) VALUES ($1, 'AZR') RETURNING id", kind
    )
    return account_id


async def add_transaction(db: Connection, key: str = "key-1") -> uuid.UUID:
    transaction_id: uuid.UUID = await db.fetchval(
        "INSERT INTO ledger_transactions (kind, idempotency_key, request_hash) "
        "VALUES ('transfer', $1, 'hash') RETURNING id",
        key,
    )
    return transaction_id


async def add_course(db: Connection, lessons: int = 0) -> uuid.UUID:
    course_id: uuid.UUID = await db.fetchval(
        "INSERT INTO courses (title) VALUES ('Ledgers 101') RETURNING id"
    )
    for position in range(lessons):
        await db.execute(
            "INSERT INTO lessons (course_id, position, title) VALUES ($1, $2, 'a lesson')",
            course_id,
            position,
        )
    return course_id


async def add_enrollment(db: Connection, user_id: uuid.UUID, course_id: uuid.UUID) -> uuid.UUID:
    enrollment_id: uuid.UUID = await db.fetchval(
        "INSERT INTO enrollments (user_id, course_id) VALUES ($1, $2) RETURNING id",
        user_id,
        course_id,
    )
    return enrollment_id


async def add_job(db: Connection, poster_id: uuid.UUID, budget: str = "100") -> uuid.UUID:
    job_id: uuid.UUID = await db.fetchval(
        "INSERT INTO jobs (poster_id, title, budget, currency) VALUES ($1, 'a job', $2, 'AZR') "
        "RETURNING id",
        poster_id,
        Decimal(budget),
    )
    return job_id


async def count(db: Connection, table: str) -> int:
    total: int = await db.fetchval(f"SELECT count(*) FROM {table}")  # test-chosen names only
    return total


# --- what must never be stored ------------------------------------------------------------


async def test_wallet_balance_never_goes_below_zero(db: Connection) -> None:
    wallet_id = await add_wallet(db, await add_user(db))
    with pytest.raises(CheckViolationError) as refused:
        await db.execute(
            "UPDATE wallets SET balance = balance - 0.000000000000000001 WHERE id = $1", wallet_id
        )
    assert refused.value.constraint_name == "ck_wallets_balance_not_negative"
    assert await db.fetchval("SELECT balance FROM wallets WHERE id = $1", wallet_id) == 0


async def test_system_account_balance_may_go_negative(db: Connection) -> None:
    account_id = await add_system_account(db)
    await db.execute("UPDATE system_accounts SET balance = -1000 WHERE id = $1", account_id)
    balance = await db.fetchval("SELECT balance FROM system_accounts WHERE id = $1", account_id)
    assert balance == Decimal(-1000)


@pytest.mark.parametrize("progress", [-1, 101])
async def test_progress_outside_0_to_100_is_refused(db: Connection, progress: int) -> None:
    enrollment_id = await add_enrollment(db, await add_user(db), await add_course(db))
    with pytest.raises(CheckViolationError) as refused:
        await db.execute(
            "UPDATE enrollments SET progress = $2 WHERE id = $1", enrollment_id, progress
        )
    assert refused.value.constraint_name == "ck_enrollments_progress_percentage"


async def test_progress_bounds_are_accepted(db: Connection) -> None:
    enrollment_id = await add_enrollment(db, await add_user(db), await add_course(db))
    assert await db.fetchval("SELECT progress FROM enrollments WHERE id = $1", enrollment_id) == 0
    await db.execute("UPDATE enrollments SET progress = 100 WHERE id = $1", enrollment_id)
    assert await db.fetchval("SELECT progress FROM enrollments WHERE id = $1", enrollment_id) == 100


async def test_unknown_currency_is_refused_everywhere(db: Connection) -> None:
    user_id = await add_user(db)
    statements = {
        "ck_wallets_currency": (
            "INSERT INTO wallets (user_id, currency) VALUES ($1, 'XYZ')",
            user_id,
        ),
        "ck_system_accounts_currency": (
            "INSERT INTO system_accounts (kind, currency) VALUES ('ubi_pool', $1)",
            "XYZ",
        ),
        "ck_jobs_currency": (
            "INSERT INTO jobs (poster_id, title, budget, currency) VALUES ($1, 'j', 1, 'XYZ')",
            user_id,
        ),
    }
    for constraint, (sql, arg) in statements.items():
        with pytest.raises(CheckViolationError) as refused:
            await db.execute(sql, arg)
        assert refused.value.constraint_name == constraint


async def test_unknown_role_is_refused(db: Connection) -> None:
    with pytest.raises(CheckViolationError) as refused:
        await db.execute(
            "INSERT INTO users (email, username, password_hash, role) "
            "VALUES ('root@example.com', 'root', 'hash', 'root')"
        )
    assert refused.value.constraint_name == "ck_users_role"


async def test_duplicate_email_is_refused(db: Connection) -> None:
    await add_user(db, "ada")
    with pytest.raises(UniqueViolationError) as refused:
        await db.execute(
            "INSERT INTO users (email, username, password_hash) "
            "VALUES ('ada@example.com', 'someone-else', 'hash')"
        )
    assert refused.value.constraint_name == "uq_users_email"


async def test_email_must_be_stored_lower_case(db: Connection) -> None:
    with pytest.raises(CheckViolationError) as refused:
        await db.execute(
            "INSERT INTO users (email, username, password_hash) "
            "VALUES ('Ada@Example.com', 'ada', 'hash')"
        )
    assert refused.value.constraint_name == "ck_users_email_lower_case"


@pytest.mark.parametrize("username", ["ada", "ADA", "Ada"])
async def test_duplicate_username_is_refused_whatever_its_case(
    db: Connection, username: str
) -> None:
    await add_user(db, "ada")
    with pytest.raises(UniqueViolationError) as refused:
        await db.execute(
            "INSERT INTO users (email, username, password_hash) "
            "VALUES ('other@example.com', $1, 'hash')",
            username,
        )
    # A unique index on lower(username) (migration 0006): `ADA` is `ada` taken.
    assert refused.value.constraint_name == "uq_users_username_lower"


async def test_duplicate_enrollment_is_refused(db: Connection) -> None:
    user_id, course_id = await add_user(db), await add_course(db)
    await add_enrollment(db, user_id, course_id)
    with pytest.raises(UniqueViolationError) as refused:
        await add_enrollment(db, user_id, course_id)
    assert refused.value.constraint_name == "uq_enrollments_user_id_course_id"


async def test_second_wallet_in_one_currency_is_refused(db: Connection) -> None:
    user_id = await add_user(db)
    await add_wallet(db, user_id, "BTC")
    with pytest.raises(UniqueViolationError) as refused:
        await add_wallet(db, user_id, "BTC")
    assert refused.value.constraint_name == "uq_wallets_user_id_currency"


async def test_idempotency_key_names_one_transaction_in_its_scope(db: Connection) -> None:
    await add_transaction(db, "same-key")
    with pytest.raises(UniqueViolationError) as refused:
        await add_transaction(db, "same-key")
    # Keys are unique per scope (the sender; "" for Nexus's own): migration 0005.
    assert refused.value.constraint_name == (
        "uq_ledger_transactions_idempotency_key_idempotency_scope"
    )


@pytest.mark.parametrize("accounts", ["both", "neither"])
async def test_posting_hits_exactly_one_account(db: Connection, accounts: str) -> None:
    transaction_id = await add_transaction(db)
    wallet_id = await add_wallet(db, await add_user(db)) if accounts == "both" else None
    account_id = await add_system_account(db) if accounts == "both" else None
    with pytest.raises(CheckViolationError) as refused:
        await db.execute(
            "INSERT INTO ledger_postings (transaction_id, wallet_id, system_account_id, "
            "currency, amount) VALUES ($1, $2, $3, 'AZR', 5)",
            transaction_id,
            wallet_id,
            account_id,
        )
    assert refused.value.constraint_name == "ck_ledger_postings_exactly_one_account"


async def test_zero_posting_is_refused(db: Connection) -> None:
    transaction_id, account_id = await add_transaction(db), await add_system_account(db)
    with pytest.raises(CheckViolationError) as refused:
        await db.execute(
            "INSERT INTO ledger_postings (transaction_id, system_account_id, currency, amount) "
            "VALUES ($1, $2, 'AZR', 0)",
            transaction_id,
            account_id,
        )
    assert refused.value.constraint_name == "ck_ledger_postings_amount_not_zero"


@pytest.mark.parametrize("amount", ["0", "-1"])
async def test_non_positive_budget_bid_and_contract_amount_are_refused(
    db: Connection, amount: str
) -> None:
    poster_id, worker_id = await add_user(db, "poster"), await add_user(db, "worker")
    with pytest.raises(CheckViolationError) as refused:
        await add_job(db, poster_id, budget=amount)
    assert refused.value.constraint_name == "ck_jobs_budget_positive"

    job_id = await add_job(db, poster_id)
    with pytest.raises(CheckViolationError) as refused:
        await db.execute(
            "INSERT INTO applications (job_id, applicant_id, proposal, bid) "
            "VALUES ($1, $2, 'p', $3)",
            job_id,
            worker_id,
            Decimal(amount),
        )
    assert refused.value.constraint_name == "ck_applications_bid_positive"

    application_id = await db.fetchval(
        "INSERT INTO applications (job_id, applicant_id, proposal, bid) "
        "VALUES ($1, $2, 'p', 90) RETURNING id",
        job_id,
        worker_id,
    )
    with pytest.raises(CheckViolationError) as refused:
        await db.execute(
            "INSERT INTO contracts (job_id, application_id, poster_id, worker_id, amount, "
            "currency) VALUES ($1, $2, $3, $4, $5, 'AZR')",
            job_id,
            application_id,
            poster_id,
            worker_id,
            Decimal(amount),
        )
    assert refused.value.constraint_name == "ck_contracts_amount_positive"


async def test_lesson_positions_are_unique_and_not_negative(db: Connection) -> None:
    course_id = await add_course(db, lessons=1)
    with pytest.raises(UniqueViolationError) as duplicate:
        await db.execute(
            "INSERT INTO lessons (course_id, position, title) VALUES ($1, 0, 'again')", course_id
        )
    assert duplicate.value.constraint_name == "uq_lessons_course_id_position"
    with pytest.raises(CheckViolationError) as negative:
        await db.execute(
            "INSERT INTO lessons (course_id, position, title) VALUES ($1, -1, 'before')", course_id
        )
    assert negative.value.constraint_name == "ck_lessons_position_not_negative"


# --- what goes with its parent, and what outlives it --------------------------------------


async def test_deleting_a_course_deletes_its_lessons_enrollments_and_certificates(
    db: Connection,
) -> None:
    user_id = await add_user(db)
    course_id, kept_course_id = await add_course(db, lessons=3), await add_course(db, lessons=2)
    enrollment_id = await add_enrollment(db, user_id, course_id)
    await db.execute(
        "INSERT INTO certificates (enrollment_id, user_id, course_id) VALUES ($1, $2, $3)",
        enrollment_id,
        user_id,
        course_id,
    )

    await db.execute("DELETE FROM courses WHERE id = $1", course_id)

    assert await db.fetchval("SELECT count(*) FROM lessons WHERE course_id = $1", course_id) == 0
    assert (
        await db.fetchval("SELECT count(*) FROM lessons WHERE course_id = $1", kept_course_id) == 2
    )
    assert await count(db, "enrollments") == 0
    assert await count(db, "certificates") == 0
    assert await count(db, "users") == 1


async def test_deleting_a_user_deletes_what_belongs_to_them(db: Connection) -> None:
    user_id, other_id = await add_user(db, "ada"), await add_user(db, "bob")
    course_id = await add_course(db)
    for owner in (user_id, other_id):
        await db.execute("INSERT INTO profiles (user_id, bio) VALUES ($1, 'hi')", owner)
        await db.execute(
            "INSERT INTO achievements (user_id, kind) VALUES ($1, 'first_course_completed')", owner
        )
        enrollment_id = await add_enrollment(db, owner, course_id)
        await db.execute(
            "INSERT INTO certificates (enrollment_id, user_id, course_id) VALUES ($1, $2, $3)",
            enrollment_id,
            owner,
            course_id,
        )

    await db.execute("DELETE FROM users WHERE id = $1", user_id)

    for table in ("profiles", "achievements", "enrollments", "certificates"):
        owners = await db.fetch(f"SELECT user_id FROM {table}")  # test-chosen names only
        assert [row["user_id"] for row in owners] == [other_id], table


async def test_a_user_with_a_wallet_cannot_be_deleted(db: Connection) -> None:
    user_id = await add_user(db)
    await add_wallet(db, user_id)
    with pytest.raises(STILL_REFERENCED) as refused:
        await db.execute("DELETE FROM users WHERE id = $1", user_id)
    assert refused.value.constraint_name == "fk_wallets_user_id_users"


async def test_deleting_a_job_deletes_its_applications(db: Connection) -> None:
    poster_id, worker_id = await add_user(db, "poster"), await add_user(db, "worker")
    job_id = await add_job(db, poster_id)
    await db.execute(
        "INSERT INTO applications (job_id, applicant_id, proposal, bid) VALUES ($1, $2, 'p', 5)",
        job_id,
        worker_id,
    )
    await db.execute("DELETE FROM jobs WHERE id = $1", job_id)
    assert await count(db, "applications") == 0


async def test_deleting_a_transaction_deletes_its_postings_but_not_the_accounts(
    db: Connection,
) -> None:
    transaction_id = await add_transaction(db)
    wallet_id, account_id = await add_wallet(db, await add_user(db)), await add_system_account(db)
    await db.executemany(
        "INSERT INTO ledger_postings (transaction_id, wallet_id, system_account_id, currency, "
        "amount) VALUES ($1, $2, $3, 'AZR', $4)",
        [
            (transaction_id, wallet_id, None, Decimal(5)),
            (transaction_id, None, account_id, Decimal(-5)),
        ],
    )
    with pytest.raises(STILL_REFERENCED):
        await db.execute("DELETE FROM wallets WHERE id = $1", wallet_id)

    await db.execute("DELETE FROM ledger_transactions WHERE id = $1", transaction_id)

    assert await count(db, "ledger_postings") == 0
    assert await count(db, "wallets") == 1
    assert await count(db, "system_accounts") == 1
