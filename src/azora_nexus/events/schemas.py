"""Wire types of the event routes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class PublishRequest(BaseModel):
    """The body of `POST /events`."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    type: str = Field(min_length=1, max_length=200)
    payload: dict[str, Any]
    source: str = Field(min_length=1, max_length=200)
    user_id: str | None = Field(default=None, alias="userId", min_length=1, max_length=200)


class EventTypeInfo(BaseModel):
    """One entry of `GET /events/types`."""

    type: str
    domain: str
    description: str
