"""Check the bench's cheap client against the real `socket.io-client`: same events, same data.

Run from the repo root: `.venv/bin/python -m bench.validate_client` (needs Node.js and
socket.io-client under the repo's node_modules, from `npm ci`, or on NODE_PATH). It starts
`azora up` (or uses --url/--secret), subscribes one JS client and one cheap client as the
same user to the same types, publishes events they must and must not receive, and compares.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx

from azora_nexus.auth.tokens import Role, issue_token
from bench.fanout.server import NexusUnderTest, given_nexus, started_nexus
from bench.sio_client import SioClient

JS_SUBSCRIBER = Path(__file__).with_name("js_subscriber.cjs")
TYPES = ["marketplace.job.posted", "education.*"]
USER = "validator"
# (type, payload, userId, delivered?): private events of another user and unsubscribed
# types come first, so one delivered by mistake shows up out of place.
EVENTS: list[tuple[str, dict[str, Any], str | None, bool]] = [
    ("finance.transaction.completed", {"amount": "1.00"}, None, False),
    ("marketplace.job.posted", {"title": "private"}, "someone-else", False),
    (
        "marketplace.job.posted",
        {"title": 'Ünïcødé ✓ "quoted" \\ / \n', "budget": "100.00"},
        None,
        True,
    ),
    (
        "education.course.enrolled",
        {"nested": {"list": [1, 2.5, None, True, {"k": "v"}]}},
        None,
        True,
    ),
    ("education.lesson.completed", {"mine": True}, USER, True),
    ("marketplace.job.posted", {"text": "x" * 1000}, None, True),  # 16-bit frame length
    ("marketplace.job.posted", {"text": "y" * 40_000}, None, True),
]


async def js_lines(
    process: asyncio.subprocess.Process,
) -> tuple[asyncio.Queue[dict[str, Any]], asyncio.Task[None]]:
    """The JS subscriber's JSON lines as they come, and the task that reads them."""
    lines: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def pump() -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            await lines.put(json.loads(line))
        await lines.put({"error": f"node exited with {await process.wait()}"})

    return lines, asyncio.create_task(pump())


async def validate(server: NexusUnderTest, timeout_s: float = 30.0) -> list[str]:
    """Differences between what the two clients received, and from what was published."""
    token = issue_token(server.secret, sub=USER, role=Role.USER)
    wanted = sum(1 for *_, delivered in EVENTS if delivered)
    node = await asyncio.create_subprocess_exec(
        "node", str(JS_SUBSCRIBER), server.url, token, json.dumps(TYPES), str(wanted),
        str(int(timeout_s * 1000)), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    lines, reader = await js_lines(node)
    cheap: list[tuple[str, Any]] = []
    cheap_done = asyncio.Event()

    def on_event(name: str, data: Any, _: int) -> None:
        cheap.append((name, data))
        if len(cheap) >= wanted:
            cheap_done.set()

    client = await SioClient.connect(server.url, {"token": token}, on_event)
    try:
        cheap_ack = await client.call("subscribe", {"types": TYPES})
        async with asyncio.timeout(timeout_s):
            js_ack = (await lines.get()).get("ack")
            published = await publish_all(server)
            js = [await lines.get() for _ in range(wanted)]
            await cheap_done.wait()
        await asyncio.sleep(0.5)  # room for an event that should not come
    finally:
        await client.close()
        if node.returncode is None:
            node.kill()
        await reader
    return compare(cheap_ack, js_ack, cheap, js, published)


async def publish_all(server: NexusUnderTest) -> list[dict[str, Any]]:
    """POST every event; the envelopes the clients should receive, in order."""
    admin = issue_token(server.secret, sub="validator-admin", role=Role.ADMIN)
    expected = []
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {admin}"}
    ) as http:
        for event_type, payload, user_id, delivered in EVENTS:
            body: dict[str, Any] = {"type": event_type, "payload": payload, "source": "validator"}
            if user_id is not None:
                body["userId"] = user_id
            response = await http.post("/events", json=body)
            response.raise_for_status()
            if delivered:
                expected.append({"id": response.json()["id"], **body})
    return expected


def compare(
    cheap_ack: Any,
    js_ack: Any,
    cheap: list[tuple[str, Any]],
    js: list[dict[str, Any]],
    published: list[dict[str, Any]],
) -> list[str]:
    """Every way the cheap client's view differs from the JS client's or from the truth."""
    problems = []
    if cheap_ack != js_ack:
        problems.append(f"acks differ: cheap {cheap_ack!r}, js {js_ack!r}")
    js_events = [(line.get("event"), line.get("data")) for line in js]
    if cheap != js_events:
        problems.append(f"events differ:\n  cheap {cheap!r:.2000}\n  js    {js_events!r:.2000}")
    for (name, envelope), sent in zip(cheap, published, strict=False):
        got = {k: envelope.get(k) for k in ("id", "type", "payload", "source")}
        if sent.get("userId") != envelope.get("userId"):
            problems.append(f"userId of {sent['id']}: {envelope.get('userId')!r}")
        if name != sent["type"] or got != {k: sent[k] for k in got}:
            problems.append(f"event {sent['id']} arrived as {name!r} {got!r:.300}")
    if len(cheap) != len(published):
        problems.append(f"cheap client got {len(cheap)} events, {len(published)} expected")
    return problems


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.validate_client")
    parser.add_argument("--url", help="a running server instead of starting `azora up`")
    parser.add_argument("--secret", help="its AZORA_JWT_SECRET (with --url)")
    args = parser.parse_args(argv)
    context: AbstractContextManager[NexusUnderTest] = (
        given_nexus(args.url, args.secret, None)
        if args.url
        else started_nexus(up_args=[], extra_env={})
    )
    with context as server:
        problems = asyncio.run(validate(server))
    for problem in problems:
        print(problem, file=sys.stderr)
    print("cheap client matches socket.io-client" if not problems else "MISMATCH")
    raise SystemExit(1 if problems else 0)


if __name__ == "__main__":
    main()
