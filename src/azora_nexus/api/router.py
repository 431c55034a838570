"""Every HTTP route, gathered in one router."""

from __future__ import annotations

from fastapi import APIRouter

from azora_nexus.api.routes import (
    auth,
    cache,
    certificates,
    courses,
    enrollments,
    health,
    users,
)

router = APIRouter()
router.include_router(health.router)
router.include_router(cache.router)
router.include_router(courses.router)
router.include_router(enrollments.router)
router.include_router(certificates.router)
router.include_router(auth.router)
router.include_router(users.router)
