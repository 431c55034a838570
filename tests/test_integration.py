"""The Python facade: each method against real backends, and the README's example run whole."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from azora_nexus.config import Settings
from azora_nexus.domain.ledger.models import Currency
from azora_nexus.errors import Conflict, DuplicateKey, InsufficientFunds, Invalid, NotFound
from azora_nexus.integration import Integration, open_integration

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "integration_example.py"


@pytest.fixture
async def azora(settings: Settings) -> AsyncIterator[Integration]:
    async with open_integration(settings) as opened:
        yield opened


async def outbox(azora: Integration) -> list[tuple[str, str | None]]:
    async with azora.nexus.db.sessions() as session:
        rows = await session.execute(text("SELECT type, user_id FROM outbox ORDER BY id"))
        return [(row.type, row.user_id) for row in rows]


async def test_create_and_get_user(azora: Integration) -> None:
    created = await azora.create_user("Thandi@Example.com", "thandi", "a long passphrase")
    assert created.email == "thandi@example.com"
    fetched = await azora.get_user(str(created.id))
    assert fetched == created
    with pytest.raises(DuplicateKey):
        await azora.create_user("thandi@example.com", "other", "a long passphrase")
    with pytest.raises(Invalid):
        await azora.create_user("not-an-email", "name", "a long passphrase")
    with pytest.raises(Invalid):
        await azora.get_user("not-an-id")
    assert await outbox(azora) == [("system.user.registered", str(created.id))]


async def test_course_enrollment_and_progress(azora: Integration) -> None:
    user = await azora.create_user("sipho@example.com", "sipho", "a long passphrase")
    course = await azora.create_course("Course", [("One", "a"), ("Two", "b")])
    assert await azora.get_course(course.id) == course
    enrollment = await azora.enroll_course(user.id, str(course.id))
    with pytest.raises(DuplicateKey):
        await azora.enroll_course(user.id, course.id)
    halfway = await azora.update_enrollment_progress(enrollment.id, 50)
    assert halfway.progress == 50
    with pytest.raises(Conflict):
        await azora.update_enrollment_progress(enrollment.id, 10)
    done = await azora.update_enrollment_progress(str(enrollment.id), 100)
    assert done.certificate is not None
    assert done.certificate.course_id == course.id
    with pytest.raises(NotFound):
        await azora.enroll_course(user.id, "00000000-0000-0000-0000-000000000000")
    types = [t for t, _ in await outbox(azora)]
    assert types == [
        "system.user.registered",
        "education.course.enrolled",
        "education.lesson.completed",
        "education.lesson.completed",
        "education.certificate.issued",
    ]


async def test_update_balance_is_a_balanced_posting_once_per_key(azora: Integration) -> None:
    user = await azora.create_user("lindo@example.com", "lindo", "a long passphrase")
    assert await azora.get_wallet(user.id, "USD") is None
    first = await azora.update_balance(user.id, "USD", "12.50", idempotency_key="k1")
    again = await azora.update_balance(user.id, Currency.USD, Decimal("12.5"), idempotency_key="k1")
    assert again == first
    assert [p.amount for p in first.postings] == ["-12.50", "12.50"]
    assert first.postings[0].system_account_id is not None
    assert first.postings[1].wallet_id is not None
    await azora.update_balance(user.id, "USD", "-2.25", idempotency_key="k2", memo="fee")
    wallet = await azora.get_wallet(user.id, "USD")
    assert wallet is not None
    assert wallet.balance == "10.25"
    with pytest.raises(Conflict):
        await azora.update_balance(user.id, "USD", "99", idempotency_key="k1")
    with pytest.raises(InsufficientFunds):
        await azora.update_balance(user.id, "USD", "-10.26", idempotency_key="k3")
    with pytest.raises(InsufficientFunds):
        await azora.update_balance(user.id, "BTC", "-1", idempotency_key="k4")
    for bad in ("0", "1.001", "NaN", "lots"):
        with pytest.raises(Invalid):
            await azora.update_balance(user.id, "USD", bad, idempotency_key=f"bad:{bad}")
    with pytest.raises(Invalid):
        await azora.update_balance(user.id, "EUR", "1", idempotency_key="k5")
    async with azora.nexus.db.sessions() as session:
        sums = (
            await session.execute(
                text(
                    "SELECT (SELECT sum(amount) FROM ledger_postings WHERE currency = 'USD'),"
                    " (SELECT balance FROM system_accounts WHERE kind = 'mining_pool'"
                    "  AND currency = 'USD'),"
                    " (SELECT count(*) FROM ledger_transactions WHERE kind = 'adjustment')"
                )
            )
        ).one()
    assert tuple(sums) == (Decimal(0), Decimal("-10.25"), 2)
    completed = [u for t, u in await outbox(azora) if t == "finance.transaction.completed"]
    assert completed == [str(user.id), str(user.id)]


async def test_post_job_apply_and_publish(azora: Integration) -> None:
    poster = await azora.create_user("p@example.com", "poster", "a long passphrase")
    worker = await azora.create_user("w@example.com", "worker", "a long passphrase")
    job = await azora.post_job(poster.id, "Design a badge", "30", "AZR", description="SVG")
    assert (job.budget, job.status.value) == ("30.000000000000000000", "open")
    application = await azora.apply_to_job(job.id, worker.id, "Here is my portfolio", "25")
    assert application.applicant_id == worker.id
    with pytest.raises(DuplicateKey):
        await azora.apply_to_job(job.id, worker.id, "again", "20")
    with pytest.raises(Invalid):
        await azora.post_job(poster.id, "", "30", "AZR")
    event = await azora.publish("system.alert", {"message": "hi"}, source="test", user_id=None)
    assert event.type == "system.alert"
    history = await azora.nexus.events.read(None, 10)
    assert [e.id for e in history if e.type == "system.alert"] == [event.id]
    with pytest.raises(Invalid):
        await azora.publish("no.such.type", {}, source="test")


@pytest.mark.slow
async def test_the_example_runs_to_the_end(settings: Settings) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": str(settings.database_url),
        "REDIS_URL": str(settings.redis_url),
        "MONGODB_URI": str(settings.mongodb_uri),
        "AZORA_DATA_DIR": str(settings.data_dir),
        "AZORA_JWT_SECRET": str(settings.jwt_secret),
        "AZORA_LOG_LEVEL": "WARNING",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode == 0, stderr.decode()
    lines = stdout.decode().splitlines()
    assert lines[1:5] == [
        "course: Ubuntu economics 2 lessons",
        "certificate: True",
        "balance: 20.000000000000000000 AZR",
        "application: pending 12.000000000000000000",
    ]
    assert lines[0].startswith("user: learner_")
    assert lines[5].startswith("event: ")


async def test_update_balance_moves_38_digits_exactly(azora: Integration) -> None:
    user = await azora.create_user("big@example.com", "big_spender", "a long passphrase")
    amount = "12345678901234567890.123456789012345678"
    await azora.update_balance(user.id, "AZR", amount, idempotency_key="big")
    wallet = await azora.get_wallet(user.id, "AZR")
    assert wallet is not None
    assert wallet.balance == amount
    await azora.update_balance(user.id, "AZR", f"-{amount}", idempotency_key="big-back")
    wallet = await azora.get_wallet(user.id, "AZR")
    assert wallet is not None
    assert Decimal(wallet.balance) == 0
    # The 19th place of a 20-digit amount is past AZR's 18: refused, not rounded away.
    with pytest.raises(Invalid):
        await azora.update_balance(user.id, "AZR", f"{amount}9", idempotency_key="too-fine")
