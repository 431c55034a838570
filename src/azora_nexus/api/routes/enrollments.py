"""`/api/enrollments`: progress through a course, which issues the certificate at 100."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from azora_nexus.api.deps import CurrentPrincipal, SessionDep
from azora_nexus.api.responses import errors
from azora_nexus.domain.education import progress
from azora_nexus.domain.education.schemas import EnrollmentPublic, ProgressUpdate

router = APIRouter(prefix="/api/enrollments", tags=["education"])


@router.patch("/{enrollment_id}/progress", responses=errors(403, 404, 409))
async def update_progress(
    enrollment_id: uuid.UUID, body: ProgressUpdate, session: SessionDep, actor: CurrentPrincipal
) -> EnrollmentPublic:
    """Progress moves forward only (409 otherwise); 100 issues the certificate."""
    return await progress.update_progress(session, enrollment_id, body.progress, actor=actor)
