"""Tables for learning: courses and their lessons, enrollments, certificates, achievements.

Everything a learner earns belongs to them and to the course: deleting either removes it.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from azora_nexus.database.base import Base
from azora_nexus.database.types import REFRESH_ON_UPDATE, TIMESTAMP, uuid_pk


class Course(Base):
    """A course and its ordered lessons."""

    __tablename__ = "courses"
    # The course list, paged by (created_at, id).
    __table_args__ = (Index("ix_courses_created_at_id", "created_at", "id"),)
    __mapper_args__ = REFRESH_ON_UPDATE

    id: Mapped[uuid.UUID] = uuid_pk()
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Text, not a FK: courses are created by admins and services, not only by users.
    created_by: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        TIMESTAMP, server_default=func.now(), onupdate=func.now()
    )

    lessons: Mapped[list[Lesson]] = relationship(
        back_populates="course",
        lazy="raise",
        order_by="Lesson.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class Lesson(Base):
    """One lesson at one `position` (0, 1, ...) in its course."""

    __tablename__ = "lessons"
    __table_args__ = (
        # Also the index for the course_id FK, its first column.
        UniqueConstraint("course_id", "position"),
        CheckConstraint("position >= 0", name="position_not_negative"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    course_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text)
    content: Mapped[str] = mapped_column(Text, default="", server_default="")

    course: Mapped[Course] = relationship(back_populates="lessons", lazy="raise")


class Enrollment(Base):
    """A user taking a course, once; `progress` is a percentage, 100 meaning completed."""

    __tablename__ = "enrollments"
    __table_args__ = (
        UniqueConstraint("user_id", "course_id"),
        CheckConstraint("progress BETWEEN 0 AND 100", name="progress_percentage"),
    )
    __mapper_args__ = REFRESH_ON_UPDATE

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    course_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), index=True
    )
    progress: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    completed_at: Mapped[datetime | None] = mapped_column(TIMESTAMP)
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        TIMESTAMP, server_default=func.now(), onupdate=func.now()
    )


class Certificate(Base):
    """Proof that an enrollment was completed; at most one per enrollment."""

    __tablename__ = "certificates"

    id: Mapped[uuid.UUID] = uuid_pk()
    enrollment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("enrollments.id", ondelete="CASCADE"), unique=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    course_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), index=True
    )
    issued_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=func.now())


class Achievement(Base):
    """A badge a user earned once, e.g. `first_course_completed`."""

    __tablename__ = "achievements"
    # Also the index for the user_id FK, its first column.
    __table_args__ = (UniqueConstraint("user_id", "kind"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # Open-ended text, not a closed set: new badges need no migration.
    kind: Mapped[str] = mapped_column(Text)
    awarded_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=func.now())
