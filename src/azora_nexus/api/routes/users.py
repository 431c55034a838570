"""`/api/users/{id}`: read a user with profile (cache-aside) and update the profile."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from azora_nexus.api.deps import CurrentPrincipal, NexusDep, SessionDep
from azora_nexus.api.responses import errors
from azora_nexus.domain.users import service
from azora_nexus.domain.users.schemas import ProfileUpdate, UserPublic

router = APIRouter(prefix="/api/users", tags=["users"])


@router.get("/{user_id}", responses=errors(404), response_model=UserPublic)
async def get_user(user_id: uuid.UUID, nexus: NexusDep, viewer: CurrentPrincipal) -> Response:
    """The user with profile; its email only for itself or an admin."""
    # The cached bytes as they are: no model to rebuild and re-validate on every hit.
    body = await service.get_user_json(nexus.db, nexus.cache, user_id, viewer=viewer)
    return Response(body, media_type="application/json")


@router.patch("/{user_id}/profile", responses=errors(403, 404))
async def update_profile(
    user_id: uuid.UUID, body: ProfileUpdate, session: SessionDep, actor: CurrentPrincipal
) -> UserPublic:
    """The user with its profile updated (own profile, or admin)."""
    return await service.update_profile(session, user_id, body, actor=actor)
