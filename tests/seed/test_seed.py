"""`seed` in process against the test's own servers: the plan's counts, an exact ledger,
the outbox a real user's actions would leave, and nothing new on a second run."""

from __future__ import annotations

import json
from decimal import Decimal

from azora_nexus.auth.passwords import verify_password
from azora_nexus.cli.seed import seed_world as seed
from azora_nexus.config import Settings
from azora_nexus.domain.ledger.amounts import format_amount, parse_amount
from azora_nexus.domain.ledger.models import Currency
from azora_nexus.domain.ledger.rewards import fingerprint
from azora_nexus.domain.seed import catalog, plan
from azora_nexus.domain.seed.plan import SeedSize
from tests.seed.seed_support import (
    fetch,
    ledger_problems,
    outbox_types,
    planned_counts,
    planned_events,
    table_counts,
)

SMALL = SeedSize(users=20, courses=3, jobs=5, transfers=30)


def database(settings: Settings) -> str:
    assert settings.database_url is not None
    return settings.database_url


async def test_small_seed_makes_exactly_the_plan_with_an_exact_ledger(settings: Settings) -> None:
    report = await seed(settings, SMALL)

    url = database(settings)
    counts = await table_counts(url)
    expected = planned_counts(SMALL)
    assert {name: counts[name] for name in expected} == expected
    assert expected["certificates"] > 0  # the plan completes some courses...
    assert 0 < expected["contracts"] < SMALL.jobs  # ...and accepts some jobs, not all
    assert report.new_total > 0
    assert (report.users.new, report.transfers.new, report.jobs.new) == (20, 30, 5)
    assert report.transfers.refused == report.contracts.refused == 0
    assert await ledger_problems(url) == {}
    assert await outbox_types(url) == planned_events(SMALL)
    assert counts["outbox"] == sum(planned_events(SMALL).values())


async def test_demo_users_have_their_profiles_and_share_the_demo_password(
    settings: Settings,
) -> None:
    await seed(settings, SeedSize(users=3, courses=0, jobs=0, transfers=0))

    rows = await fetch(
        database(settings),
        "SELECT u.email, u.username, u.password_hash, p.display_name, p.bio, p.location,"
        " p.avatar_url FROM users AS u JOIN profiles AS p ON p.user_id = u.id ORDER BY u.email",
    )
    assert [(r["email"], r["username"]) for r in rows] == [
        ("user00000@demo.azora.dev", "user00000"),
        ("user00001@demo.azora.dev", "user00001"),
        ("user00002@demo.azora.dev", "user00002"),
    ]
    for index, row in enumerate(rows):
        demo = catalog.profile(index)
        assert (row["display_name"], row["bio"], row["location"], row["avatar_url"]) == (
            demo.display_name,
            demo.bio,
            demo.location,
            demo.avatar_url,
        )
    # The documented shortcut: one argon2id hash for every demo user, and it is the real one.
    assert len({r["password_hash"] for r in rows}) == 1
    assert rows[0]["password_hash"].startswith("$argon2id$")
    assert await verify_password(rows[0]["password_hash"], catalog.DEMO_PASSWORD)


async def test_wallets_hold_the_mined_funds_less_what_moved(settings: Settings) -> None:
    await seed(settings, SMALL)

    rows = await fetch(
        database(settings),
        "SELECT w.currency, sum(w.balance) AS held, count(*) AS wallets FROM wallets AS w"
        " GROUP BY w.currency ORDER BY w.currency",
    )
    escrow = await fetch(
        database(settings),
        "SELECT coalesce(sum(balance), 0) AS held FROM system_accounts WHERE kind = 'escrow'",
    )
    mined = {c.value: amount * SMALL.users for c, amount in plan.FUNDING.items()}
    held = {r["currency"]: r["held"] for r in rows}
    # Transfers and payments move money between demo users; escrow holds the rest.
    assert held["AZR"] + escrow[0]["held"] == mined["AZR"]
    assert held["USD"] == mined["USD"]
    assert {r["currency"]: r["wallets"] for r in rows} == {"AZR": 20, "USD": 20}
    assert escrow[0]["held"] > Decimal(0)  # accepted but unreleased jobs


async def test_a_second_run_makes_nothing_and_moves_no_money(settings: Settings) -> None:
    await seed(settings, SMALL)
    url = database(settings)
    counts = await table_counts(url)
    balances = await fetch(url, "SELECT id, balance FROM wallets ORDER BY id")

    again = await seed(settings, SMALL)

    assert again.new_total == 0
    assert (again.users.existing, again.transfers.existing, again.jobs.existing) == (20, 30, 5)
    assert await table_counts(url) == counts
    assert await fetch(url, "SELECT id, balance FROM wallets ORDER BY id") == balances
    assert await ledger_problems(url) == {}


async def test_a_larger_run_adds_only_the_new_part(settings: Settings) -> None:
    await seed(settings, SeedSize(users=10, courses=2, jobs=3, transfers=10))

    grown = SeedSize(users=14, courses=3, jobs=4, transfers=15)
    report = await seed(settings, grown)

    assert (report.users.new, report.users.existing) == (4, 10)
    assert (report.transfers.new, report.transfers.existing) == (5, 10)
    assert (report.jobs.new, report.courses.new) == (1, 1)
    counts = await table_counts(database(settings))
    assert (counts["users"], counts["courses"], counts["jobs"]) == (14, 3, 4)
    assert await ledger_problems(database(settings)) == {}


async def test_jobs_of_a_run_of_another_size_are_kept_and_acted_on_by_their_poster(
    settings: Settings,
) -> None:
    await seed(settings, SeedSize(users=4, courses=0, jobs=6, transfers=0))
    url = database(settings)
    posters = await fetch(url, "SELECT title, poster_id FROM jobs ORDER BY title")

    # Another user count draws other posters and bidders for the same numbered jobs.
    assert any(plan.job(j, 4).poster != plan.job(j, 9).poster for j in range(6))
    report = await seed(settings, SeedSize(users=9, courses=0, jobs=6, transfers=0))

    assert (report.jobs.new, report.jobs.existing) == (0, 6)
    assert report.contracts.new == report.releases.new == 0  # signed and paid the first time
    assert await fetch(url, "SELECT title, poster_id FROM jobs ORDER BY title") == posters
    rows = await fetch(
        url,
        "SELECT count(*) AS n FROM contracts WHERE poster_id <> ("
        "SELECT poster_id FROM jobs WHERE jobs.id = contracts.job_id)",
    )
    assert rows[0]["n"] == 0
    assert await ledger_problems(url) == {}


async def test_bulk_rows_are_what_the_services_would_write(settings: Settings) -> None:
    await seed(settings, SMALL)
    url = database(settings)

    # Starting balances: the mining service's transaction for the same request (so posting
    # it again through `reward_mining` with the seed's key replays it), one event each.
    mined = await fetch(
        url,
        "SELECT t.idempotency_key, t.idempotency_scope, t.request_hash, t.kind, t.created_by,"
        " w.user_id, w.currency, p.amount, o.payload FROM ledger_transactions AS t"
        " JOIN ledger_postings AS p ON p.transaction_id = t.id AND p.wallet_id IS NOT NULL"
        " JOIN wallets AS w ON w.id = p.wallet_id"
        " JOIN outbox AS o ON o.type = 'finance.mining.reward'"
        "  AND o.payload->>'transactionId' = t.id::text AND o.payload->>'walletId' = w.id::text"
        " WHERE t.kind = 'mining_reward'",
    )
    users = {r["username"]: r["id"] for r in await fetch(url, "SELECT username, id FROM users")}
    assert len(mined) == SMALL.users * len(plan.FUNDING)
    for row in mined:
        index = int(row["idempotency_key"].rsplit("user", 1)[1])
        currency = Currency(row["currency"])
        amount = parse_amount(str(plan.FUNDING[currency]), currency)
        request = {"user": str(row["user_id"]), "currency": currency.value, "amount": str(amount)}
        assert row["user_id"] == users[catalog.username(index)]
        assert row["idempotency_key"] == plan.mining_key(index, currency)
        assert (row["idempotency_scope"], row["created_by"]) == ("seed", "seed")
        assert row["request_hash"] == fingerprint({"mining": request})
        assert row["amount"] == amount
        assert json.loads(row["payload"])["amount"] == format_amount(amount, currency)

    # Badges: a user's first certificate earns the first badge, announced with it once.
    holders = await fetch(url, "SELECT DISTINCT user_id FROM certificates")
    badges = await fetch(url, "SELECT user_id, kind FROM achievements")
    announced = await fetch(
        url,
        "SELECT user_id, payload->'achievements' AS kinds FROM outbox"
        " WHERE type = 'education.certificate.issued' ORDER BY id",
    )
    assert sorted((r["user_id"], r["kind"]) for r in badges) == sorted(
        (r["user_id"], "first_course_completed") for r in holders
    )
    told = [(r["user_id"], kind) for r in announced for kind in json.loads(r["kinds"])]
    assert sorted(told) == sorted(
        (str(u), k) for u, k in ((r["user_id"], r["kind"]) for r in badges)
    )
