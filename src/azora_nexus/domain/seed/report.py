"""What a seed run did: per kind of thing, how many it made and how many were there already."""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass
class Count:
    """Things of one kind the plan asks for: made by this run, found made, or refused."""

    new: int = 0
    existing: int = 0
    refused: int = 0  # e.g. a transfer the source's balance no longer covers

    @property
    def total(self) -> int:
        return self.new + self.existing

    def describe(self, noun: str) -> str:
        refused = f", {self.refused} refused" if self.refused else ""
        return f"{self.total} {noun} ({self.new} new{refused})"


@dataclass
class SeedReport:
    """The demo data a run leaves in place; `new_total` is zero for a repeated run."""

    users: Count = field(default_factory=Count)
    rewards: Count = field(default_factory=Count)
    courses: Count = field(default_factory=Count)
    enrollments: Count = field(default_factory=Count)
    certificates: Count = field(default_factory=Count)
    jobs: Count = field(default_factory=Count)
    applications: Count = field(default_factory=Count)
    contracts: Count = field(default_factory=Count)
    releases: Count = field(default_factory=Count)
    transfers: Count = field(default_factory=Count)

    @property
    def new_total(self) -> int:
        """How many things this run created."""
        return sum(getattr(self, f.name).new for f in fields(self))

    def summary(self) -> str:
        """One line naming every count, e.g. `20 users (20 new), 40 mining rewards (...)`."""
        nouns = {
            "users": "users",
            "rewards": "mining rewards",
            "courses": "courses",
            "enrollments": "enrollments",
            "certificates": "certificates",
            "jobs": "jobs",
            "applications": "applications",
            "contracts": "contracts",
            "releases": "escrow releases",
            "transfers": "transfers",
        }
        return ", ".join(getattr(self, name).describe(noun) for name, noun in nouns.items())
