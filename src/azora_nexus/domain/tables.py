"""Every table Nexus has, in one place so Alembic and the tests see them all (each domain
imports its own tables from its models.py, never from here)."""

from __future__ import annotations

from azora_nexus.database.base import Base
from azora_nexus.domain.education.models import (
    Achievement,
    Certificate,
    Course,
    Enrollment,
    Lesson,
)
from azora_nexus.domain.ledger.models import (
    LedgerPosting,
    LedgerTransaction,
    PayoutJob,
    SystemAccount,
    Wallet,
)
from azora_nexus.domain.marketplace.models import Application, Contract, Job
from azora_nexus.domain.privacy.models import ErasedUser, PendingTraces
from azora_nexus.domain.users.models import Profile, User
from azora_nexus.epochs import Epoch
from azora_nexus.events.models import OutboxEvent

metadata = Base.metadata

__all__ = [
    "Achievement",
    "Application",
    "Certificate",
    "Contract",
    "Course",
    "Enrollment",
    "Epoch",
    "ErasedUser",
    "Job",
    "LedgerPosting",
    "LedgerTransaction",
    "Lesson",
    "OutboxEvent",
    "PayoutJob",
    "PendingTraces",
    "Profile",
    "SystemAccount",
    "User",
    "Wallet",
    "metadata",
]
