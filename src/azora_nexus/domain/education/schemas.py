"""Wire types of learning: course bodies, enrollments, progress, certificates."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from azora_nexus.domain.schemas import Content, Description, Title, WireModel

MAX_LESSONS = 200


class LessonCreate(WireModel):
    title: Title
    content: Content = ""


class CourseCreate(WireModel):
    """`POST /api/courses`: a course and its lessons, in order."""

    title: Title
    description: Description = ""
    lessons: list[LessonCreate] = Field(default_factory=list, max_length=MAX_LESSONS)


class LessonPublic(WireModel):
    id: uuid.UUID
    position: int
    title: str
    content: str


class CourseSummary(WireModel):
    """A course as the list shows it, without its lessons."""

    id: uuid.UUID
    title: str
    description: str
    created_by: str | None
    created_at: datetime


class CoursePublic(CourseSummary):
    """A course with its lessons in order."""

    lessons: list[LessonPublic]


class ProgressUpdate(WireModel):
    """`PATCH /api/enrollments/{id}/progress`: a percentage that never goes back."""

    progress: int = Field(ge=0, le=100)


class CertificatePublic(WireModel):
    id: uuid.UUID
    enrollment_id: uuid.UUID
    user_id: uuid.UUID
    course_id: uuid.UUID
    issued_at: datetime


class EnrollmentPublic(WireModel):
    """An enrollment; `certificate` is set once progress has reached 100."""

    id: uuid.UUID
    user_id: uuid.UUID
    course_id: uuid.UUID
    progress: int
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    certificate: CertificatePublic | None = None
