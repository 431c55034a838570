"""py-spy on the server while it delivers: collapsed stacks, and a text summary of them.

`--native` makes the C frames visible, so time in the cyclic GC, in `write` and in
`getpid` shows under its own name instead of under the Python line that triggered it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import TracebackType

# Substrings of frames that mark where time goes, checked against every frame of a stack.
CATEGORIES = {
    "cyclic GC": ("gc_collect", "collect_generations", "collect_with_callback"),
    "write/send syscalls": (
        "__libc_write",
        "__GI___libc_write",
        "write (libc",
        "__send",
        "writev",
        "sock_send",
    ),
    "epoll/select": ("epoll_wait", "select (selectors.py"),
    "getpid": ("getpid",),
    "JSON": ("orjson", "json/encoder", "json/decoder", "dumps (", "loads ("),
    "JWT": ("jwt/",),
    "engineio": ("engineio/",),
    "socketio": ("socketio/",),
    "uvicorn/websockets": ("websockets/", "uvicorn/"),
    "redis client": ("redis/",),
    "pydantic": ("pydantic",),
    "FastAPI/Starlette": ("fastapi/", "starlette/"),
    "httptools/h11": ("httptools", "h11"),
    "azora cache": ("azora_nexus/cache/",),
    "azora auth": ("azora_nexus/auth/", "azora_nexus/api/deps"),
    "metrics middleware": ("azora_nexus/metrics", "prometheus_client/"),
}


def py_spy() -> str:
    """The py-spy executable of this venv, or on the PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise RuntimeError("py-spy is not installed: pip install py-spy (the bench extra)")
    return found


class Profiler:
    """Records `duration_s` of `pid` into `path` (collapsed stacks) and `path`.txt (summary)."""

    def __init__(self, pid: int, duration_s: float, path: Path, native: bool) -> None:
        self.path = path
        command = [py_spy(), "record", "--pid", str(pid), "--duration", str(round(duration_s))]
        command += ["--rate", "200", "--format", "raw", "--output", str(path)]
        # The workers of `azora up --workers N` are children of `pid`.
        command += ["--subprocesses"]
        self.command = command + (["--native"] if native else [])
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Profiler:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self.process is not None
        _, stderr = self.process.communicate(timeout=120)
        if self.process.returncode != 0 or not self.path.exists():
            message = stderr.decode(errors="replace").strip()
            print(f"py-spy failed ({self.process.returncode}): {message}", file=sys.stderr)
            return
        summary = summarize(self.path.read_text())
        self.path.with_suffix(".txt").write_text(summary)


def read_stacks(raw: str) -> Counter[tuple[str, ...]]:
    """Collapsed stacks (`a;b;c 12` lines) as frame tuples, root first, with sample counts."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in raw.splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            stacks[tuple(frames.split(";"))] += int(count)
    return stacks


def is_loop_thread(frames: tuple[str, ...]) -> bool:
    """A stack of the thread that runs a node's event loop (not a thread pool's idle worker,
    not another Python process under the server such as the MongoDB-compatible one)."""
    if frames[0].startswith("process ") and "azora" not in frames[0]:
        return False
    marks = ("run_forever", "uvloop", "Runner.run (asyncio/runners.py")
    return any(mark in frame for frame in frames for mark in marks)


def is_idle(frames: tuple[str, ...]) -> bool:
    """The loop waiting for I/O: nothing to run."""
    leaf = frames[-1]
    marks = ("epoll_wait", "epoll_pwait", "select (selectors.py", "poll (libc")
    return any(mark in leaf for mark in marks)


def summarize(raw: str, top: int = 25) -> str:
    """Where the event loop's busy time goes: categories, then self and total per function."""
    stacks = read_stacks(raw)
    loop = Counter({f: n for f, n in stacks.items() if is_loop_thread(f)})
    idle = sum(n for f, n in loop.items() if is_idle(f))
    busy = Counter({f: n for f, n in loop.items() if not is_idle(f)})
    total = sum(busy.values()) or 1
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    for frames, count in busy.items():
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
        for category, marks in CATEGORIES.items():
            if any(mark in frame for frame in frames for mark in marks):
                categories[category] += count
    all_loop = sum(loop.values()) or 1
    lines = [
        f"{sum(stacks.values())} samples, {sum(loop.values())} of the event loop's thread, "
        f"{100 * idle / all_loop:.1f}% of those idle (waiting for I/O).",
        "Shares below are of the loop's busy samples; a stack may fall in several categories.",
        "",
        "category share:",
    ]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in categories.most_common()]
    lines += ["", f"top {top} by self samples:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    lines += ["", f"top {top} by total samples:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(lines) + "\n"
