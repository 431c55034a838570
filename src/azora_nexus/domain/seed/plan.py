"""What the demo world holds for a given size: the same plan on every run, so a re-run finds
everything it would make already made.

Each thing is numbered (user 42, job 7, transfer 1234) and drawn from its own number and the
sizes. Demo users, courses and the keys of transfers and rewards depend on their number
alone, so a run of another size (`--users 200` after `--users 100`) finds what the first made
and adds the rest; steps the new plan asks of old things (a bid on a job closed since) are
refused and counted, never forced.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum

from azora_nexus.domain.ledger.models import Currency
from azora_nexus.domain.seed import catalog
from azora_nexus.errors import Invalid

# What mining pays each demo user to start with, per currency.
FUNDING = {Currency.AZR: Decimal("1000"), Currency.USD: Decimal("250")}
PROGRESS = (0, 20, 40, 60, 80, 100, 100)  # a third of enrollments end with a certificate
ENROLLMENTS_PER_USER = (0, 1, 1, 2, 2, 3)
BID_RATIOS = (Decimal("0.8"), Decimal("0.9"), Decimal("1"), Decimal("1.1"))
CENT = Decimal("0.01")


@dataclass(frozen=True)
class SeedSize:
    """How many of each thing `azora seed` asks for; Invalid for a size that cannot be."""

    users: int = 100
    courses: int = 10
    jobs: int = 20
    transfers: int = 200

    def __post_init__(self) -> None:
        for name in ("users", "courses", "jobs", "transfers"):
            if getattr(self, name) < 0:
                raise Invalid(f"--{name} must be 0 or more, not {getattr(self, name)}")
        if (self.jobs or self.transfers) and self.users < 2:
            raise Invalid("--jobs and --transfers need at least 2 users")


def mining_key(index: int, currency: Currency) -> str:
    """The idempotency key of demo user `index`'s starting reward in `currency`."""
    return f"seed:mining:{currency.value}:{catalog.username(index)}"


def transfer_key(index: int) -> str:
    return f"seed:transfer:{index:06d}"


def enrollments(user: int, courses: int) -> list[tuple[int, int]]:
    """The courses demo user `user` takes, and how far it gets in each (100: completed)."""
    rng = catalog.draw("enroll", user)
    count = min(courses, rng.choice(ENROLLMENTS_PER_USER))
    return [(course, rng.choice(PROGRESS)) for course in sorted(rng.sample(range(courses), count))]


def other_user(rng_value: int, user: int) -> int:
    """The `rng_value`-th user other than `user` (rng_value < users - 1)."""
    return rng_value + (rng_value >= user)


class Outcome(IntEnum):
    """How far a demo job gets: still open, contract signed (escrow held), or paid out."""

    OPEN = 0
    ACCEPTED = 1
    RELEASED = 2


@dataclass(frozen=True)
class Bid:
    applicant: int
    proposal: str
    amount: Decimal


@dataclass(frozen=True)
class JobPlan:
    """Demo job `index`: posted by `poster`, with its bids; the first bid wins if accepted."""

    index: int
    poster: int
    title: str
    description: str
    budget: Decimal
    bids: tuple[Bid, ...]
    outcome: Outcome


def job(index: int, users: int) -> JobPlan:
    """Demo job `index` among `users` demo users (at least 2)."""
    rng = catalog.draw("job", index)
    poster = rng.randrange(users)
    budget = Decimal(rng.randrange(20, 301, 5))
    applicants = [other_user(n, poster) for n in rng.sample(range(users - 1), min(4, users - 1))]
    bids = tuple(
        Bid(
            applicant=applicant,
            proposal=f"I can deliver this within {rng.randint(2, 14)} days; "
            f"{catalog.username(applicant)} has done similar work before.",
            amount=(budget * rng.choice(BID_RATIOS)).quantize(CENT),
        )
        for applicant in applicants[: rng.randint(1, len(applicants))]
    )
    return JobPlan(
        index=index,
        poster=poster,
        title=catalog.job_title(index),
        description=f"{catalog.job_title(index)}. Paid in AZR through escrow on delivery.",
        budget=budget,
        bids=bids,
        # Released, accepted, open in turn: every size past two jobs shows each state.
        outcome=(Outcome.RELEASED, Outcome.ACCEPTED, Outcome.OPEN)[index % 3],
    )


@dataclass(frozen=True)
class TransferPlan:
    index: int
    source: int
    target: int
    currency: Currency
    amount: Decimal
    memo: str | None

    @property
    def key(self) -> str:
        return transfer_key(self.index)


def transfer(index: int, users: int) -> TransferPlan:
    """Demo transfer `index` between two of `users` demo users (at least 2): 1 to 25 units,
    a quarter of them in USD."""
    rng = catalog.draw("transfer", index)
    source = rng.randrange(users)
    return TransferPlan(
        index=index,
        source=source,
        target=other_user(rng.randrange(users - 1), source),
        currency=Currency.USD if rng.random() < 0.25 else Currency.AZR,
        amount=Decimal(rng.randint(100, 2500)).scaleb(-2),
        memo=rng.choice(catalog.MEMOS),
    )
