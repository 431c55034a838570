"""The initial schema: users, ledger, education, marketplace and the event outbox.

Generated with `alembic revision --autogenerate` against an empty database, then rewritten
by hand: closed sets of values are VARCHAR(32) columns with named CHECK constraints (the
models' non-native `Enum`s), and tables are grouped by domain.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENCIES = ("AZR", "USD", "BTC", "ETH")
ROLES = ("user", "admin", "service")
SYSTEM_ACCOUNT_KINDS = ("mining_pool", "ubi_pool", "escrow")
TRANSACTION_KINDS = (
    "transfer",
    "mining_reward",
    "ubi",
    "escrow_hold",
    "escrow_release",
    "adjustment",
)
JOB_STATUSES = ("open", "closed", "cancelled")
APPLICATION_STATUSES = ("pending", "accepted", "rejected")
CONTRACT_STATUSES = ("escrowed", "released", "cancelled")

# Dependents first: the order `downgrade` drops them in.
TABLES = (
    "contracts",
    "applications",
    "jobs",
    "achievements",
    "certificates",
    "enrollments",
    "lessons",
    "courses",
    "ledger_postings",
    "ledger_transactions",
    "system_accounts",
    "wallets",
    "profiles",
    "users",
    "outbox",
)


def one_of(table: str, column: str, values: tuple[str, ...]) -> sa.CheckConstraint:
    """The CHECK a non-native `Enum` column named `column` carries."""
    listed = ", ".join(f"'{value}'" for value in values)
    return sa.CheckConstraint(f"{column} IN ({listed})", name=op.f(f"ck_{table}_{column}"))


def closed_set() -> sa.String:
    return sa.String(32)


def uuid_pk() -> sa.Column[Any]:
    return sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False)


def timestamp(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    default = None if nullable else sa.text("now()")
    return sa.Column(name, sa.DateTime(timezone=True), server_default=default, nullable=nullable)


def money(name: str, *, default: bool = False) -> sa.Column[Any]:
    server_default = sa.text("0") if default else None
    return sa.Column(
        name, sa.Numeric(precision=38, scale=18), server_default=server_default, nullable=False
    )


def fk(
    table: str, column: str, target: str, ondelete: str | None = None
) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.id"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete=ondelete,
    )


def create_users() -> None:
    op.create_table(
        "users",
        uuid_pk(),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", closed_set(), server_default="user", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        timestamp("created_at"),
        timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_users_email_lower_case")),
        one_of("users", "role", ROLES),
    )
    op.create_table(
        "profiles",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=True),
        sa.Column("bio", sa.Text(), nullable=True),
        sa.Column("avatar_url", sa.Text(), nullable=True),
        sa.Column("location", sa.Text(), nullable=True),
        timestamp("updated_at"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_profiles")),
        fk("profiles", "user_id", "users", ondelete="CASCADE"),
    )


def create_ledger() -> None:
    op.create_table(
        "wallets",
        uuid_pk(),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("currency", closed_set(), nullable=False),
        money("balance", default=True),
        timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallets")),
        # Ledger history outlives its user: erasure anonymises the user instead.
        fk("wallets", "user_id", "users", ondelete="RESTRICT"),
        sa.UniqueConstraint("user_id", "currency", name=op.f("uq_wallets_user_id_currency")),
        sa.CheckConstraint("balance >= 0", name=op.f("ck_wallets_balance_not_negative")),
        one_of("wallets", "currency", CURRENCIES),
    )
    op.create_table(
        "system_accounts",
        uuid_pk(),
        sa.Column("kind", closed_set(), nullable=False),
        sa.Column("currency", closed_set(), nullable=False),
        # No CHECK on balance: the pools issue money, so theirs goes negative.
        money("balance", default=True),
        timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_system_accounts")),
        sa.UniqueConstraint("kind", "currency", name=op.f("uq_system_accounts_kind_currency")),
        one_of("system_accounts", "kind", SYSTEM_ACCOUNT_KINDS),
        one_of("system_accounts", "currency", CURRENCIES),
    )
    op.create_table(
        "ledger_transactions",
        uuid_pk(),
        sa.Column("kind", closed_set(), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.Text(), nullable=False),
        sa.Column("memo", sa.Text(), nullable=True),
        timestamp("created_at"),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transactions")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_ledger_transactions_idempotency_key")),
        one_of("ledger_transactions", "kind", TRANSACTION_KINDS),
    )
    op.create_table(
        "ledger_postings",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("transaction_id", sa.Uuid(), nullable=False),
        sa.Column("wallet_id", sa.Uuid(), nullable=True),
        sa.Column("system_account_id", sa.Uuid(), nullable=True),
        sa.Column("currency", closed_set(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=38, scale=18), nullable=False),
        timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_postings")),
        fk("ledger_postings", "transaction_id", "ledger_transactions", ondelete="CASCADE"),
        fk("ledger_postings", "wallet_id", "wallets", ondelete="RESTRICT"),
        fk("ledger_postings", "system_account_id", "system_accounts", ondelete="RESTRICT"),
        sa.CheckConstraint(
            "(wallet_id IS NULL) <> (system_account_id IS NULL)",
            name=op.f("ck_ledger_postings_exactly_one_account"),
        ),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_ledger_postings_amount_not_zero")),
        one_of("ledger_postings", "currency", CURRENCIES),
    )
    op.create_index(
        op.f("ix_ledger_postings_transaction_id"), "ledger_postings", ["transaction_id"]
    )
    # An account's history paged by id; each also serves its account's FK.
    op.create_index("ix_ledger_postings_wallet_id_id", "ledger_postings", ["wallet_id", "id"])
    op.create_index(
        "ix_ledger_postings_system_account_id_id",
        "ledger_postings",
        ["system_account_id", "id"],
    )


def create_education() -> None:
    op.create_table(
        "courses",
        uuid_pk(),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("created_by", sa.Text(), nullable=True),
        timestamp("created_at"),
        timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_courses")),
    )
    op.create_index("ix_courses_created_at_id", "courses", ["created_at", "id"])
    op.create_table(
        "lessons",
        uuid_pk(),
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lessons")),
        fk("lessons", "course_id", "courses", ondelete="CASCADE"),
        sa.UniqueConstraint("course_id", "position", name=op.f("uq_lessons_course_id_position")),
        sa.CheckConstraint("position >= 0", name=op.f("ck_lessons_position_not_negative")),
    )
    op.create_table(
        "enrollments",
        uuid_pk(),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("progress", sa.Integer(), server_default=sa.text("0"), nullable=False),
        timestamp("completed_at", nullable=True),
        timestamp("created_at"),
        timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollments")),
        fk("enrollments", "user_id", "users", ondelete="CASCADE"),
        fk("enrollments", "course_id", "courses", ondelete="CASCADE"),
        sa.UniqueConstraint("user_id", "course_id", name=op.f("uq_enrollments_user_id_course_id")),
        sa.CheckConstraint(
            "progress BETWEEN 0 AND 100", name=op.f("ck_enrollments_progress_percentage")
        ),
    )
    op.create_index(op.f("ix_enrollments_course_id"), "enrollments", ["course_id"])
    op.create_table(
        "certificates",
        uuid_pk(),
        sa.Column("enrollment_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("course_id", sa.Uuid(), nullable=False),
        timestamp("issued_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificates")),
        fk("certificates", "enrollment_id", "enrollments", ondelete="CASCADE"),
        fk("certificates", "user_id", "users", ondelete="CASCADE"),
        fk("certificates", "course_id", "courses", ondelete="CASCADE"),
        sa.UniqueConstraint("enrollment_id", name=op.f("uq_certificates_enrollment_id")),
    )
    op.create_index(op.f("ix_certificates_user_id"), "certificates", ["user_id"])
    op.create_index(op.f("ix_certificates_course_id"), "certificates", ["course_id"])
    op.create_table(
        "achievements",
        uuid_pk(),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        timestamp("awarded_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_achievements")),
        fk("achievements", "user_id", "users", ondelete="CASCADE"),
        sa.UniqueConstraint("user_id", "kind", name=op.f("uq_achievements_user_id_kind")),
    )


def create_marketplace() -> None:
    op.create_table(
        "jobs",
        uuid_pk(),
        sa.Column("poster_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        money("budget"),
        sa.Column("currency", closed_set(), nullable=False),
        sa.Column("status", closed_set(), server_default="open", nullable=False),
        timestamp("created_at"),
        timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        fk("jobs", "poster_id", "users"),
        sa.CheckConstraint("budget > 0", name=op.f("ck_jobs_budget_positive")),
        one_of("jobs", "currency", CURRENCIES),
        one_of("jobs", "status", JOB_STATUSES),
    )
    op.create_index(op.f("ix_jobs_poster_id"), "jobs", ["poster_id"])
    op.create_index("ix_jobs_status_created_at_id", "jobs", ["status", "created_at", "id"])
    op.create_table(
        "applications",
        uuid_pk(),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("applicant_id", sa.Uuid(), nullable=False),
        sa.Column("proposal", sa.Text(), nullable=False),
        money("bid"),
        sa.Column("status", closed_set(), server_default="pending", nullable=False),
        timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applications")),
        fk("applications", "job_id", "jobs", ondelete="CASCADE"),
        fk("applications", "applicant_id", "users"),
        sa.UniqueConstraint(
            "job_id", "applicant_id", name=op.f("uq_applications_job_id_applicant_id")
        ),
        sa.CheckConstraint("bid > 0", name=op.f("ck_applications_bid_positive")),
        one_of("applications", "status", APPLICATION_STATUSES),
    )
    op.create_index(op.f("ix_applications_applicant_id"), "applications", ["applicant_id"])
    op.create_table(
        "contracts",
        uuid_pk(),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("application_id", sa.Uuid(), nullable=False),
        sa.Column("poster_id", sa.Uuid(), nullable=False),
        sa.Column("worker_id", sa.Uuid(), nullable=False),
        money("amount"),
        sa.Column("currency", closed_set(), nullable=False),
        sa.Column("status", closed_set(), server_default="escrowed", nullable=False),
        sa.Column("escrow_transaction_id", sa.Uuid(), nullable=True),
        sa.Column("release_transaction_id", sa.Uuid(), nullable=True),
        timestamp("created_at"),
        timestamp("released_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contracts")),
        fk("contracts", "job_id", "jobs"),
        fk("contracts", "application_id", "applications"),
        fk("contracts", "poster_id", "users"),
        fk("contracts", "worker_id", "users"),
        fk("contracts", "escrow_transaction_id", "ledger_transactions"),
        fk("contracts", "release_transaction_id", "ledger_transactions"),
        sa.UniqueConstraint("job_id", name=op.f("uq_contracts_job_id")),
        sa.UniqueConstraint("application_id", name=op.f("uq_contracts_application_id")),
        sa.CheckConstraint("amount > 0", name=op.f("ck_contracts_amount_positive")),
        one_of("contracts", "currency", CURRENCIES),
        one_of("contracts", "status", CONTRACT_STATUSES),
    )
    for column in ("poster_id", "worker_id", "escrow_transaction_id", "release_transaction_id"):
        op.create_index(op.f(f"ix_contracts_{column}"), "contracts", [column])


def create_outbox() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=True),
        sa.Column("timestamp_ms", sa.BigInteger(), nullable=False),
        timestamp("created_at"),
        sa.Column("stream_id", sa.Text(), nullable=True),
        timestamp("published_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    # Only the rows still to publish: stays small however long the table grows.
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["id"],
        postgresql_where=sa.text("published_at IS NULL"),
    )


def upgrade() -> None:
    create_users()
    create_ledger()
    create_education()
    create_marketplace()
    create_outbox()


def downgrade() -> None:
    # Dropping a table drops its indexes and constraints with it.
    for table in TABLES:
        op.drop_table(table)
