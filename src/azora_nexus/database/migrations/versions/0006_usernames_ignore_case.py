"""Usernames unique whatever their case: a unique index on lower(username).

`tim_x` and `TIM_X` could both register, and one could pass for the other. Emails were
already safe (stored lower-case, checked by `ck_users_email_lower_case`).

Existing names that differ only by case: the oldest account keeps its name; each later one
is renamed `<name cut to 23 characters>-<first 8 hex digits of its id>` (still a valid
username of at most 32 characters, and unique since ids are). Sign-in is by email, so
nobody is locked out; the renamed see their new name in their profile. When any name
changed, the cache epoch moves so that no cached user answers with the old one.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RENAME_CASE_DUPLICATES = """
WITH ranked AS (
    SELECT id, row_number() OVER (
        PARTITION BY lower(username) ORDER BY created_at, id
    ) AS n
    FROM users
)
UPDATE users AS u
SET username = left(u.username, 23) || '-' || left(replace(u.id::text, '-', ''), 8)
FROM ranked WHERE ranked.id = u.id AND ranked.n > 1
RETURNING u.id
"""

MOVE_CACHE_EPOCH = """
UPDATE epochs SET epoch = md5(random()::text || clock_timestamp()::text), moved_at = now()
WHERE name = 'cache'
"""


def upgrade() -> None:
    renamed = op.get_bind().execute(sa.text(RENAME_CASE_DUPLICATES)).fetchall()
    if renamed:
        op.execute(MOVE_CACHE_EPOCH)
    op.drop_constraint(op.f("uq_users_username"), "users", type_="unique")
    op.create_index("uq_users_username_lower", "users", [sa.text("lower(username)")], unique=True)


def downgrade() -> None:
    # Renamed users keep their new names: they are valid, and unique in any case.
    op.drop_index("uq_users_username_lower", table_name="users")
    op.create_unique_constraint(op.f("uq_users_username"), "users", ["username"])
