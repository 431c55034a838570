"""Tables for people: `users` (identity and role) and `profiles` (what they show)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Text, func, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from azora_nexus.auth.tokens import Role
from azora_nexus.database.base import Base
from azora_nexus.database.types import REFRESH_ON_UPDATE, TIMESTAMP, text_enum, uuid_pk


class User(Base):
    """Someone who can sign in. `email` is stored lower-case and `username` as typed, and
    neither may differ from another's by case alone (`tim_x` and `TIM_X` are one name)."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint("email = lower(email)", name="email_lower_case"),)
    __mapper_args__ = REFRESH_ON_UPDATE

    id: Mapped[uuid.UUID] = uuid_pk()
    email: Mapped[str] = mapped_column(Text, unique=True)
    username: Mapped[str] = mapped_column(Text)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[Role] = mapped_column(
        text_enum(Role, "role"), default=Role.USER, server_default=Role.USER.value
    )
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        TIMESTAMP, server_default=func.now(), onupdate=func.now()
    )

    profile: Mapped[Profile | None] = relationship(
        back_populates="user", lazy="raise", passive_deletes=True
    )


# Usernames are unique whatever their case (migration 0006); registration maps a clash to 409.
Index("uq_users_username_lower", func.lower(User.username), unique=True)


class Profile(Base):
    """What a user shows others; deleted with its user."""

    __tablename__ = "profiles"
    __mapper_args__ = REFRESH_ON_UPDATE

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    display_name: Mapped[str | None] = mapped_column(Text)
    bio: Mapped[str | None] = mapped_column(Text)
    avatar_url: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(
        TIMESTAMP, server_default=func.now(), onupdate=func.now()
    )

    user: Mapped[User] = relationship(back_populates="profile", lazy="raise")
