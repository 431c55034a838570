"""`azora ubi`: start a UBI distribution and follow it to the end with a progress bar."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from azora_nexus.config import Settings
from azora_nexus.errors import Conflict, Invalid

if TYPE_CHECKING:
    from azora_nexus.domain.ledger.schemas import DistributionPublic, UbiRequest

console = Console(stderr=True)
POLL_S = 0.2


async def distribute(settings: Settings, body: UbiRequest) -> DistributionPublic:
    """Record the distribution and wait for it to end: beside a running `azora up` on its
    servers (whose payout workers may take it), otherwise on servers started for the run.
    This process runs a payout worker too, so the job ends whether a node runs or not."""
    from azora_nexus.domain.ledger.ubi import get_distribution, start_distribution
    from azora_nexus.nexus import open_nexus

    # No relay here: the distribution's events wait in the outbox for a node to relay them.
    async with open_nexus(settings, migrate=True, background=False, attach=True) as nexus:
        async with nexus.db.sessions() as session:
            job = await start_distribution(session, body, created_by="cli")
        worker = asyncio.create_task(nexus.payouts.run(), name="payout worker")
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        try:
            with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
                bar = progress.add_task(f"UBI {job.idempotency_key}", total=job.total_users)
                while job.status == "running":
                    await asyncio.sleep(POLL_S)
                    async with nexus.db.sessions() as session:
                        job = await get_distribution(session, job.id)
                    progress.update(bar, completed=job.paid + job.already_paid)
                progress.update(bar, total=job.paid + job.already_paid)
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        return job


def ubi(
    currency: Annotated[str, typer.Option(help="AZR, USD, BTC or ETH")],
    amount: Annotated[str, typer.Option(help="credited to each active user, e.g. 10.00")],
    key: Annotated[
        str | None, typer.Option(help="idempotency key: the same key never pays anyone twice")
    ] = None,
) -> None:
    """Credit every active user `amount` once per key from the UBI pool, as a resumable job;
    a bar shows its progress. Run it again with the same key to resume or re-read it."""
    import uvloop
    from pydantic import ValidationError

    from azora_nexus.domain.ledger.schemas import UbiRequest

    fields = {
        "currency": currency,
        "amountPerUser": amount,
        "idempotencyKey": key or f"cli:{uuid.uuid4()}",
    }
    try:
        body = UbiRequest.model_validate(fields)
    except ValidationError as exc:  # one line, exit 1, like every refusal of the CLI
        problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        raise Invalid(problems) from None
    started = time.monotonic()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        job = runner.run(distribute(Settings(), body))
    elapsed_s = time.monotonic() - started
    if job.status != "completed":
        raise Conflict(f"distribution {job.id} {job.status}: {job.error}")
    print(
        f"distribution {job.id} ({job.idempotency_key}) completed in {elapsed_s:.1f} s: "
        f"{job.paid} users paid {job.amount_per_user} {job.currency.value}, "
        f"{job.already_paid} paid before"
    )


def register(app: typer.Typer) -> None:
    app.command()(ubi)
