"""Run as a process: commit one outbox event, then die by SIGKILL before anything else runs.

`python outbox_writer.py <database url> <message>` prints the outbox id once committed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from azora_nexus.database.engine import open_database
from azora_nexus.events.outbox import add_event


async def commit_then_die(url: str, message: str) -> None:
    async with open_database(url) as db:
        async with db.transaction() as session:
            row = await add_event(session, "system.alert", {"message": message}, source="writer")
            await session.flush()
            outbox_id = row.id
        print(outbox_id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    asyncio.run(commit_then_die(sys.argv[1], sys.argv[2]))
