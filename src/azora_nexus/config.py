"""Settings: one typed object read from the environment (CONTRACT.md, "Configuration")."""

from __future__ import annotations

import ipaddress
import os
from enum import StrEnum
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """Everything Nexus reads from the environment; built once by the composition root.

    An unset URL means "start the embedded server under `data_dir`" (see backends/).
    """

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    mongodb_uri: str | None = Field(default=None, validation_alias="MONGODB_URI")
    data_dir: Path = Field(default=Path(".azora"), validation_alias="AZORA_DATA_DIR")
    port: int = Field(default=4001, ge=0, le=65535, validation_alias="AZORA_PORT")
    host: str = Field(default="127.0.0.1", validation_alias="AZORA_HOST")
    jwt_secret: str | None = Field(default=None, validation_alias="AZORA_JWT_SECRET")
    # The HMAC key of `system.user.erased`'s `subjectHmac`; unset: derived from the JWT secret.
    erasure_key: str | None = Field(default=None, validation_alias="AZORA_ERASURE_KEY")
    env: Environment = Field(
        default=Environment.DEVELOPMENT,
        validation_alias=AliasChoices("AZORA_ENV", "NODE_ENV"),
    )
    # Ports of the embedded servers: 0 picks a free one at start.
    postgres_port: int = Field(default=0, ge=0, le=65535, validation_alias="AZORA_POSTGRES_PORT")
    redis_port: int = Field(default=0, ge=0, le=65535, validation_alias="AZORA_REDIS_PORT")
    mongo_port: int = Field(default=0, ge=0, le=65535, validation_alias="AZORA_MONGO_PORT")
    # How long a backend check (health, readiness probe) may take before it counts as down.
    backend_timeout_s: float = Field(default=2.0, gt=0, validation_alias="AZORA_BACKEND_TIMEOUT_S")
    # After a backend failed to answer, requests needing it are refused at once (503) and
    # one probe this often asks whether it is back (guard.py).
    backend_retry_s: float = Field(default=1.0, gt=0, validation_alias="AZORA_BACKEND_RETRY_S")
    log_level: str = Field(default="INFO", validation_alias="AZORA_LOG_LEVEL")
    # PostgreSQL connections a node keeps (and as many again in a burst). `--workers N`
    # gives each worker its share of this, unless AZORA_DB_POOL_SIZE is set.
    db_pool_size: int = Field(default=20, ge=1, validation_alias="AZORA_DB_POOL_SIZE")
    # Cache (cache/): how long a value lives, how slow a Redis call may be before the
    # breaker sends reads to PostgreSQL, how often it then probes Redis, and how long a
    # reader waits for another reader's fill of the same key.
    cache_ttl_s: float = Field(default=300.0, gt=0, validation_alias="AZORA_CACHE_TTL_S")
    cache_timeout_s: float = Field(default=0.5, gt=0, validation_alias="AZORA_CACHE_TIMEOUT_S")
    cache_retry_s: float = Field(default=1.0, gt=0, validation_alias="AZORA_CACHE_RETRY_S")
    cache_wait_s: float = Field(default=1.0, gt=0, validation_alias="AZORA_CACHE_WAIT_S")
    # The event stream keeps about this many events; older ones are archived. It is never
    # trimmed past an event not yet archived, unless it holds more than the hard cap
    # (default 10 x the maxlen): then history from before the dropped ones is expired.
    stream_maxlen: int = Field(default=100_000, ge=1, validation_alias="AZORA_STREAM_MAXLEN")
    stream_hard_maxlen: int | None = Field(
        default=None, ge=1, validation_alias="AZORA_STREAM_HARD_MAXLEN"
    )
    # Set by `azora up --workers N` for each worker: where the workers' metrics are shared
    # (prometheus_client's multiprocess mode reads the same variable).
    metrics_dir: Path | None = Field(default=None, validation_alias="PROMETHEUS_MULTIPROC_DIR")
    # A socket that has not sent its Socket.IO CONNECT by then is closed.
    socket_connect_timeout_s: float = Field(
        default=10.0, gt=0, validation_alias="AZORA_SOCKET_CONNECT_TIMEOUT_S"
    )
    # Engine.IO's heartbeat: the server pings every interval; a socket that has not answered
    # a ping within the timeout is closed (so a silent one goes after interval + timeout).
    socket_ping_interval_s: float = Field(
        default=25.0, gt=0, validation_alias="AZORA_SOCKET_PING_INTERVAL_S"
    )
    socket_ping_timeout_s: float = Field(
        default=20.0, gt=0, validation_alias="AZORA_SOCKET_PING_TIMEOUT_S"
    )
    # Connection state recovery (realtime/recovery.py): a socket's session (user,
    # subscriptions) is kept in Redis while it is connected and at least this long after it
    # was last seen; a reconnect within it is restored with every event it missed. 0: off.
    socket_recovery_ttl_s: float = Field(
        default=3600.0, ge=0, validation_alias="AZORA_SOCKET_RECOVERY_TTL_S"
    )
    # Inbound limits per socket (realtime/limits.py): past either in a second, the socket is
    # closed. The bytes must allow one packet of the largest size (64 KiB).
    socket_max_packets_per_s: int = Field(
        default=100, ge=1, validation_alias="AZORA_SOCKET_MAX_PACKETS_PER_S"
    )
    socket_max_bytes_per_s: int = Field(
        default=256 * 1024, ge=64 * 1024, validation_alias="AZORA_SOCKET_MAX_BYTES_PER_S"
    )
    # Sockets one user may hold open at once on a node (each worker of `--workers N` counts
    # its own); the next CONNECT is refused.
    max_sockets_per_user: int = Field(
        default=20, ge=1, validation_alias="AZORA_MAX_SOCKETS_PER_USER"
    )
    # Password hashing (auth/hashing.py): threads of each pool (sign-ups hash on one, sign-ins
    # verify on the other; 0: half the CPUs, at least one) and jobs that may wait beyond
    # them before requests are refused with 503.
    password_workers: int = Field(default=0, ge=0, validation_alias="AZORA_PASSWORD_WORKERS")
    password_queue: int = Field(default=16, ge=0, validation_alias="AZORA_PASSWORD_QUEUE")
    # Registrations one address may make per window (auth/ratelimit.py), counted in Redis.
    registrations_per_address: int = Field(
        default=10, ge=1, validation_alias="AZORA_REGISTRATIONS_PER_ADDRESS"
    )
    registration_window_s: int = Field(
        default=3600, ge=1, validation_alias="AZORA_REGISTRATION_WINDOW_S"
    )
    # Sign-in (auth/ratelimit.py): past 5 failures an account's attempts from addresses that
    # never signed in to it wait this long after the last failure, doubling up to the max.
    login_delay_base_s: float = Field(
        default=1.0, gt=0, validation_alias="AZORA_LOGIN_DELAY_BASE_S"
    )
    login_delay_max_s: float = Field(default=60.0, gt=0, validation_alias="AZORA_LOGIN_DELAY_MAX_S")
    # Request bodies (api/body_limit.py): refused with 413 past this many bytes, while they
    # stream in and before any route or authentication runs; `/events` has its own limit.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1, validation_alias="AZORA_MAX_BODY_BYTES")
    max_event_body_bytes: int = Field(
        default=64 * 1024, ge=1, validation_alias="AZORA_MAX_EVENT_BODY_BYTES"
    )

    # The embedded PostgreSQL's WAL archive (backends/wal.py): a base backup this often, and
    # every moment of this window kept restorable (older bases and WAL are pruned).
    base_backup_interval_s: float = Field(
        default=86_400.0, gt=0, validation_alias="AZORA_BASE_BACKUP_INTERVAL_S"
    )
    wal_retention_s: float = Field(
        default=604_800.0, gt=0, validation_alias="AZORA_WAL_RETENTION_S"
    )

    # Retention (events/retention.py): outbox rows published, archived and older than this
    # leave PostgreSQL with their whole partition; the Mongo archive keeps events this long
    # (unset: forever), and a history read reaching further back answers `history_expired`.
    outbox_retention_s: float = Field(
        default=604_800.0, gt=0, validation_alias="AZORA_OUTBOX_RETENTION_S"
    )
    archive_retention_s: float | None = Field(
        default=None, gt=0, validation_alias="AZORA_ARCHIVE_RETENTION_S"
    )

    # Payout jobs (domain/ledger/payouts.py): a node holding a distribution renews its claim
    # with every batch; one silent for `lease` is taken over. Idle workers look every `poll`.
    payout_lease_s: float = Field(default=10.0, gt=0, validation_alias="AZORA_PAYOUT_LEASE_S")
    payout_poll_s: float = Field(default=1.0, gt=0, validation_alias="AZORA_PAYOUT_POLL_S")
    payout_batch_size: int = Field(
        default=1000, ge=1, le=10_000, validation_alias="AZORA_PAYOUT_BATCH_SIZE"
    )

    # Group commit of transfers (domain/ledger/group_commit.py): a node posts the transfers
    # that queue while a batch is committing as one transaction, at most `max` of them,
    # after waiting at most `window` for the queue to fill, with at most `in_flight`
    # batches sent at once. A lone transfer under no load never waits. A max of 1 posts
    # every transfer in a transaction of its own.
    ledger_batch_window_s: float = Field(
        default=0.0005, ge=0, le=0.05, validation_alias="AZORA_LEDGER_BATCH_WINDOW_S"
    )
    ledger_batch_max: int = Field(
        default=128, ge=1, le=1000, validation_alias="AZORA_LEDGER_BATCH_MAX"
    )
    ledger_batch_in_flight: int = Field(
        default=2, ge=1, le=8, validation_alias="AZORA_LEDGER_BATCH_IN_FLIGHT"
    )

    # Peers whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses or CIDRs,
    # comma-separated). Empty: none, so a client cannot pick the address it is limited by.
    trusted_proxies: str = Field(default="", validation_alias="AZORA_TRUSTED_PROXIES")

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for entry in (e.strip() for e in value.split(",")):
            if entry:
                ipaddress.ip_network(entry, strict=False)  # ValueError: not an address or CIDR
        return ",".join(e.strip() for e in value.split(",") if e.strip())

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, path: Path) -> Path:
        # Made absolute once, here: servers change into their own dirs before opening files
        # (redis-server chdirs to --dir, then a relative --logfile no longer resolves).
        return Path(os.path.abspath(path.expanduser()))
