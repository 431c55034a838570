"""What the bench's clients cost per delivery, measured against a fake server that costs ~0.

A picows server in its own process plays just enough Socket.IO (open, CONNECT, subscribe
ack) and then writes the same pre-built event frame to every socket, E times at R/s. The
client processes are the fan-out bench's own; their CPU per delivery says how many
deliveries per second the load generator can take before it, not the server, is the limit.

Run: `.venv/bin/python -m bench.fanout.client_cost --clients 1000 --rate 50 --seconds 10`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import time
from multiprocessing.connection import Connection

import orjson
import psutil
import uvloop
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_create_server

from azora_nexus.backends.process import free_port
from bench.fanout.pool import ClientPool, plans_for

OPEN = b'0{"sid":"s","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'


class FakeSocket(WSListener):
    """One socket of the fake server: answers CONNECT and every ack-carrying emit."""

    def __init__(self, sockets: list[WSTransport]) -> None:
        super().__init__()
        self.sockets = sockets

    def on_ws_connected(self, transport: WSTransport) -> None:
        transport.send(WSMsgType.TEXT, OPEN)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        data = frame.get_payload_as_bytes()
        if data.startswith(b"40"):
            transport.send(WSMsgType.TEXT, b'40{"sid":"n"}')
        elif data.startswith(b"42"):
            ack_id = data[2 : data.index(b"[")]
            transport.send(WSMsgType.TEXT, b"43" + ack_id + b'[{"ok":true,"subscribed":[]}]')
            self.sockets.append(transport)


async def serve_fake(port: int, conn: Connection) -> None:
    sockets: list[WSTransport] = []
    server = await ws_create_server(lambda _: FakeSocket(sockets), "127.0.0.1", port)
    conn.send("ready")
    loop = asyncio.get_running_loop()
    rate, count = await loop.run_in_executor(None, conn.recv)
    start = loop.time()
    for seq in range(count):
        await asyncio.sleep(max(0.0, start + seq / rate - loop.time()))
        payload = {"seq": seq, "sentUs": time.time_ns() // 1000}
        envelope = {"id": f"{seq}-0", "type": "t", "payload": payload, "source": "bench"}
        frame = b"42" + orjson.dumps(["t", envelope])
        for transport in sockets:
            transport.send(WSMsgType.TEXT, frame)
    conn.send("done")
    await loop.run_in_executor(None, conn.recv)
    server.close()


def run_fake(port: int, conn: Connection) -> None:
    uvloop.run(serve_fake(port, conn))


async def measure(clients: int, procs: int, rate: float, seconds: float) -> dict[str, object]:
    """Client CPU per delivery and delivery latency at `clients` x `rate`."""
    port, events = free_port(), round(rate * seconds)
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    fake = context.Process(target=run_fake, args=(port, theirs), daemon=True)
    fake.start()
    await asyncio.to_thread(ours.recv)
    plans = plans_for(
        url=f"http://127.0.0.1:{port}", secret="x" * 32, clients=clients, procs=procs,
        event_type="t", events=events, concurrency=100, timeout_s=30,
    )  # fmt: skip
    async with ClientPool(plans) as pool:
        await pool.ask("connect")
        processes = [psutil.Process(pid) for pid in pool.pids]
        before = sum(sum(p.cpu_times()[:2]) for p in processes)
        ours.send((rate, events))
        await asyncio.to_thread(ours.recv)
        await asyncio.sleep(1.0)
        spent = sum(sum(p.cpu_times()[:2]) for p in processes) - before
        results = await pool.ask("finish")
    ours.send("stop")
    fake.join(10)
    delivered = sum(r["deliveries"] for r in results)
    return {
        "deliveries": delivered,
        "expected": clients * events,
        "client_cpu_s": round(spent, 2),
        "client_cpu_us_per_delivery": round(1e6 * spent / max(delivered, 1), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout.client_cost")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.clients, args.procs, args.rate, args.seconds))))


if __name__ == "__main__":
    main()
