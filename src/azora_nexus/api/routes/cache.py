"""`GET /cache/stats`: this node's cache counters, for admins."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from azora_nexus.api.deps import CurrentPrincipal, NexusDep
from azora_nexus.auth.tokens import Principal, Role
from azora_nexus.errors import Forbidden

router = APIRouter(tags=["cache"])


async def get_admin(principal: CurrentPrincipal) -> Principal:
    """Admins only (CONTRACT.md): a service token gets 403 like a user token."""
    if principal.role is not Role.ADMIN:
        raise Forbidden("this needs an admin token")
    return principal


AdminPrincipal = Annotated[Principal, Depends(get_admin)]


@router.get(
    "/cache/stats",
    responses={401: {"description": "no or bad token"}, 403: {"description": "not an admin"}},
)
async def cache_stats(nexus: NexusDep, _: AdminPrincipal) -> dict[str, Any]:
    """`{hits, misses, hitRate, fills, invalidations, ...}` of this node (all its workers)
    since it started."""
    return nexus.cache.snapshot()
