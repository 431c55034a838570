"""`POST /events`, `GET /events` (history) and `GET /events/types` (the taxonomy)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import ValidationError

from azora_nexus.api.deps import CurrentPrincipal, NexusDep, PrivilegedPrincipal
from azora_nexus.errors import Invalid, PayloadTooLarge
from azora_nexus.events.bus import QUEUED
from azora_nexus.events.envelope import parse_event_id
from azora_nexus.events.history import EventFilter
from azora_nexus.events.schemas import EventTypeInfo, PublishRequest
from azora_nexus.events.taxonomy import EVENT_TYPES, TypeSelector

router = APIRouter(tags=["events"])


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body may take at most {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"the body may take at most {limit} bytes")
    return bytes(body)


def parse_publish(body: bytes) -> PublishRequest:
    try:
        return PublishRequest.model_validate(orjson.loads(body))
    except orjson.JSONDecodeError as exc:
        # CONTRACT.md: POST /events answers 422 for any bad body (the other routes say 400).
        raise Invalid(f"the body is not JSON: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise Invalid(problems) from exc


@router.post(
    "/events",
    status_code=202,
    responses={401: {}, 403: {}, 413: {}, 422: {}, 503: {}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": PublishRequest.model_json_schema()}},
        }
    },
)
async def publish_event(
    request: Request, nexus: NexusDep, _: PrivilegedPrincipal
) -> dict[str, str | bool | None]:
    """Publish an event; 202 with the id the bus gave it.

    While Redis is down the event waits in the PostgreSQL outbox for the relay: 202
    `{"id": null, "queued": true}` then (the id comes with the event on the stream); 503
    only when PostgreSQL is down too.
    """
    publish = parse_publish(await read_body(request, nexus.settings.max_event_body_bytes))
    event = await nexus.events.publish(
        publish.type, publish.payload, source=publish.source, user_id=publish.user_id
    )
    if event.id == QUEUED:
        return {"id": None, "queued": True}
    return {"id": event.id}


@router.get("/events", responses={401: {}, 410: {}, 422: {}})
async def list_events(
    *,
    nexus: NexusDep,
    principal: CurrentPrincipal,
    event_type: Annotated[str | None, Query(alias="type")] = None,
    user_id: Annotated[str | None, Query(alias="userId")] = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, list[dict[str, Any]]]:
    """Events after `after`, oldest first; a user sees public events and its own."""
    if after is not None:
        parse_event_id(after)
    events_filter = EventFilter(
        types=None if event_type is None else TypeSelector.parse([event_type]),
        user_id=user_id,
        viewer=None if principal.is_privileged else principal.user_id,
    )
    events = await nexus.events.read(after, limit, events_filter)
    return {"events": [e.to_wire() for e in events]}


@router.get("/events/types")
async def list_event_types() -> dict[str, list[EventTypeInfo]]:
    """Every event type, with its domain and what it means."""
    return {
        "types": [
            EventTypeInfo(type=t.name, domain=t.domain, description=t.meaning)
            for t in EVENT_TYPES.values()
        ]
    }
