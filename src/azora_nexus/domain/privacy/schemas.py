"""Wire types of the privacy routes."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from azora_nexus.domain.schemas import WireModel


class ErasureRequest(WireModel):
    """`DELETE /api/users/{id}`: a user confirms with their password; an admin sends none."""

    password: Annotated[str, Field(min_length=1, max_length=1024)] | None = None
