"""Every HTTP route, gathered in one router."""

from __future__ import annotations

from fastapi import APIRouter

from azora_nexus.api.routes import (
    admin,
    applications,
    auth,
    cache,
    certificates,
    console,
    contracts,
    courses,
    docs,
    enrollments,
    events,
    health,
    jobs,
    metrics,
    privacy,
    rewards,
    users,
    wallets,
)

router = APIRouter()
router.include_router(health.router)
router.include_router(metrics.router)
router.include_router(cache.router)
router.include_router(events.router)
router.include_router(courses.router)
router.include_router(enrollments.router)
router.include_router(certificates.router)
router.include_router(jobs.router)
router.include_router(applications.router)
router.include_router(contracts.router)
router.include_router(auth.router)
router.include_router(users.router)
router.include_router(privacy.router)
router.include_router(wallets.router)
router.include_router(rewards.router)
router.include_router(admin.router)
router.include_router(console.router)
router.include_router(docs.router)
