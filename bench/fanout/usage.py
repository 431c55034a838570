"""CPU and memory of the server's process tree, grouped: the Nexus node(s) and each backend."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil


def group_of(process: psutil.Process) -> str:
    """`nexus` for the Python node processes, else the backend the process belongs to."""
    name = process.name()
    if name.startswith("postgres"):
        return "postgres"
    if name.startswith("redis"):
        return "redis"
    if any("secantus" in part for part in process.cmdline()):
        return "mongo"
    return "nexus"


def renice(pids: list[int], niceness: int) -> None:
    """Set the scheduling priority of `pids` and their descendants (negative needs root).

    With autogroup scheduling, nice only ranks processes within their session's group;
    the group's own nice (in /proc/<pid>/autogroup) ranks it against other sessions.
    """
    for pid in pids:
        # No autogroup scheduling here, or not allowed: the process nice still applies.
        with contextlib.suppress(OSError):
            Path(f"/proc/{pid}/autogroup").write_text(str(niceness))
        root = psutil.Process(pid)
        for process in [root, *root.children(recursive=True)]:
            try:
                process.nice(niceness)
            except psutil.NoSuchProcess:
                continue


@dataclass(frozen=True)
class TreeSample:
    """CPU seconds used so far and resident bytes, per group, at one instant."""

    at: float
    cpu_s: dict[str, float]
    rss: dict[str, int]


def sample_tree(pid: int) -> TreeSample:
    """Add up CPU time and RSS over `pid` and all its descendants, per group."""
    root = psutil.Process(pid)
    cpu: dict[str, float] = {}
    rss: dict[str, int] = {}
    for process in [root, *root.children(recursive=True)]:
        try:
            with process.oneshot():
                group = group_of(process)
                times = process.cpu_times()
                resident = process.memory_info().rss
        except psutil.NoSuchProcess:
            continue  # a short-lived child (a postgres backend) gone between the calls
        cpu[group] = cpu.get(group, 0.0) + times.user + times.system
        rss[group] = rss.get(group, 0) + resident
    return TreeSample(at=time.monotonic(), cpu_s=cpu, rss=rss)


@dataclass(frozen=True)
class MachineSample:
    """Busy CPU seconds of the whole machine (all cores) and of the bench's own clients."""

    at: float
    busy_s: float
    clients_s: float


def sample_machine(client_pids: list[int]) -> MachineSample:
    """The machine's busy time so far, and the CPU time of the bench's client processes."""
    times = psutil.cpu_times()
    clients = 0.0
    for pid in client_pids:
        try:
            own = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        clients += own.user + own.system
    busy = sum(times) - times.idle - getattr(times, "iowait", 0.0)
    return MachineSample(at=time.monotonic(), busy_s=busy, clients_s=clients)


def machine_percent(
    start: MachineSample, end: MachineSample, server: dict[str, float]
) -> dict[str, float]:
    """Whole machine, bench clients, and everything else (other users), in % of one core."""
    wall = max(end.at - start.at, 1e-9)
    machine = 100 * (end.busy_s - start.busy_s) / wall
    clients = 100 * (end.clients_s - start.clients_s) / wall
    return {
        "machine": round(machine, 1),
        "bench_clients": round(clients, 1),
        "others": round(max(0.0, machine - clients - sum(server.values())), 1),
    }


def cpu_percent(start: TreeSample, end: TreeSample) -> dict[str, float]:
    """Per group, CPU used between two samples in percent of one core."""
    wall = max(end.at - start.at, 1e-9)
    return {
        group: round(100 * (end.cpu_s[group] - start.cpu_s.get(group, 0.0)) / wall, 1)
        for group in end.cpu_s
    }


@dataclass
class TreeSampler:
    """Samples the tree every `interval_s` on a thread: peak RSS and busiest interval."""

    pid: int
    interval_s: float = 0.5
    samples: list[TreeSample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> TreeSampler:
        self.samples.append(sample_tree(self.pid))
        self._thread = threading.Thread(target=self._run, name="tree-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.samples.append(sample_tree(self.pid))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.samples.append(sample_tree(self.pid))
            except psutil.NoSuchProcess:
                return

    def figures(self) -> dict[str, object]:
        """Mean and busiest-interval CPU %, and peak RSS in MB, per group."""
        first, last = self.samples[0], self.samples[-1]
        peaks: dict[str, float] = {}
        for before, after in zip(self.samples, self.samples[1:], strict=False):
            for group, percent in cpu_percent(before, after).items():
                peaks[group] = max(peaks.get(group, 0.0), percent)
        peak_rss: dict[str, float] = {}
        for sample in self.samples:
            for group, resident in sample.rss.items():
                peak_rss[group] = max(peak_rss.get(group, 0.0), round(resident / 2**20, 1))
        return {
            "cpu_percent_mean": cpu_percent(first, last),
            "cpu_percent_peak": peaks,
            "rss_mb_peak": peak_rss,
        }
