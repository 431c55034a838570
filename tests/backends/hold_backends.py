"""Start the embedded backends on a data dir, print their pids, then wait to be killed."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from azora_nexus.backends.launcher import embedded_servers, lock_data_dir
from azora_nexus.backends.process import ChildServer
from azora_nexus.config import Settings


async def main(data_dir: Path) -> None:
    servers: dict[str, ChildServer] = embedded_servers(Settings(AZORA_DATA_DIR=data_dir))
    async with lock_data_dir(data_dir):
        await asyncio.gather(*(server.start() for server in servers.values()))
        print(json.dumps({name: server.pid for name, server in servers.items()}), flush=True)
        await asyncio.sleep(3600)


asyncio.run(main(Path(sys.argv[1])))
