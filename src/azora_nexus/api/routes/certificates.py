"""`/api/certificates`: the caller's certificates."""

from __future__ import annotations

from fastapi import APIRouter

from azora_nexus.api.deps import CurrentPrincipal, SessionDep
from azora_nexus.api.paging import PageDep
from azora_nexus.api.responses import errors
from azora_nexus.domain.education import service
from azora_nexus.domain.education.schemas import CertificatePublic
from azora_nexus.domain.paging import Page

router = APIRouter(prefix="/api/certificates", tags=["education"])


@router.get("", responses=errors(403))
async def list_certificates(
    session: SessionDep, page: PageDep, actor: CurrentPrincipal
) -> Page[CertificatePublic]:
    """The caller's certificates, oldest first."""
    return await service.list_certificates(session, page, actor=actor)
