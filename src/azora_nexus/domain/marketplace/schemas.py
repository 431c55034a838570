"""Wire types of work: jobs, applications, and the contracts paid through escrow."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field

from azora_nexus.domain.ledger.models import Currency
from azora_nexus.domain.ledger.schemas import AmountText
from azora_nexus.domain.marketplace.models import ApplicationStatus, ContractStatus, JobStatus
from azora_nexus.domain.schemas import Description, Title, WireModel


class JobCreate(WireModel):
    """`POST /api/jobs`: work offered for `budget` in `currency`."""

    title: Title
    description: Description = ""
    budget: AmountText
    currency: Currency


class JobPublic(WireModel):
    id: uuid.UUID
    poster_id: uuid.UUID
    title: str
    description: str
    budget: str
    currency: Currency
    status: JobStatus
    created_at: datetime


class ApplicationCreate(WireModel):
    """`POST /api/jobs/{id}/applications`: a proposal and the price asked."""

    proposal: Annotated[Description, Field(min_length=1)]
    bid: AmountText


class ApplicationPublic(WireModel):
    id: uuid.UUID
    job_id: uuid.UUID
    applicant_id: uuid.UUID
    proposal: str
    bid: str
    status: ApplicationStatus
    created_at: datetime


class ContractPublic(WireModel):
    """What `accept` and `release` answer (CONTRACT.md)."""

    id: uuid.UUID
    job_id: uuid.UUID
    application_id: uuid.UUID
    poster_id: uuid.UUID
    worker_id: uuid.UUID
    amount: str
    currency: Currency
    status: ContractStatus
