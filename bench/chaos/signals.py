"""Freezing and killing a real server: the process and every process it started.

PostgreSQL serves each connection from a child that makes itself a process group leader,
so a signal to the postmaster's group does not reach them: the tree is walked in /proc.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


def children(pid: int) -> list[int]:
    """Every live descendant of `pid`, parents before their children."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: list[int] = []
    frontier = [pid]
    while frontier:
        current = frontier.pop(0)
        kids = [child for child, parent in parents.items() if parent == current]
        found += kids
        frontier += kids
    return found


def signal_tree(pid: int, sig: signal.Signals) -> None:
    """`sig` to `pid` first (so it starts nothing new), then to everything under it."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    for child in children(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, sig)


def freeze(pid: int) -> None:
    signal_tree(pid, signal.SIGSTOP)


def thaw(pid: int) -> None:
    signal_tree(pid, signal.SIGCONT)


def kill_hard(pid: int) -> None:
    """kill -9 of the server alone, as a crash or the OOM killer would do it."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
