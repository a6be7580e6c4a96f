"""Start benchmark processes, watch their memory, and stop them (stdlib only).

Every process is started in its own session, so it and whatever it spawns
(Flower's SuperLink starts a ServerApp process, a SuperNode a ClientApp
process) are stopped together by process-group id. A watcher thread samples
the resident memory of each group; when one group passes the memory
cap (a server holding every client's update), or the machine runs low on
memory, it stops everything and flags the run as OOM.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Sequence

logger = logging.getLogger(__name__)

DEFAULT_MEMORY_CAP_BYTES = 12 * 10**9
MIN_AVAILABLE_BYTES = 4 * 10**9
POLL_S = 0.1


def _status_kb(pid: int, keys: tuple[str, ...]) -> dict[str, int]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    found: dict[str, int] = {}
    for line in text.splitlines():
        key = line.split(":", 1)[0]
        if key in keys:
            found[key] = int(line.split()[1])
    return found


def _parents() -> dict[int, tuple[int, int]]:
    """Map each live pid to (parent pid, start time in clock ticks)."""
    parents: dict[int, tuple[int, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses; fields follow the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        parents[int(entry.name)] = (int(fields[1]), int(fields[19]))
    return parents


def _descendants(root: int, parents: dict[int, tuple[int, int]]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in parents.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in parents:
            found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _signal(kill: Callable[[int, int], None], pid: int, sig: int) -> None:
    try:
        kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def available_memory_bytes() -> int:
    """Return MemAvailable of the machine in bytes."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


@dataclass
class Group:
    """A started process and its descendants, with their memory peaks."""

    name: str
    proc: subprocess.Popen[bytes]
    peak_rss_bytes: int = 0
    hwm_bytes: dict[int, int] = field(default_factory=dict)
    started: dict[int, int] = field(default_factory=dict)

    @property
    def peak_mb(self) -> float:
        """Return the larger of the sampled group peak and any process's VmHWM."""
        return max(self.peak_rss_bytes, max(self.hwm_bytes.values(), default=0)) / 1e6


class ProcessSet:
    """The processes of one benchmark run, watched and stopped together."""

    def __init__(self, memory_cap_bytes: int = DEFAULT_MEMORY_CAP_BYTES) -> None:
        self.memory_cap_bytes = memory_cap_bytes
        self.groups: list[Group] = []
        self.oom = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._logs: list[IO[bytes]] = []
        self._watcher = threading.Thread(target=self._watch, daemon=True)
        self._watcher.start()

    def start(
        self, name: str, argv: Sequence[str], env: dict[str, str], log_path: Path
    ) -> Group:
        """Start ``argv`` in a new session, output to ``log_path``; return its group."""
        log = open(log_path, "wb")  # noqa: SIM115 - closed in stop_all
        self._logs.append(log)
        proc = subprocess.Popen(
            list(argv),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        group = Group(name=name, proc=proc)
        with self._lock:
            self.groups.append(group)
        return group

    def sample(self) -> int:
        """Update every group's memory peaks once; return the largest group's RSS."""
        parents = _parents()
        largest = 0
        with self._lock:
            groups = list(self.groups)
        for group in groups:
            current = 0
            for pid in _descendants(group.proc.pid, parents):
                kb = _status_kb(pid, ("VmRSS", "VmHWM"))
                current += kb.get("VmRSS", 0) * 1024
                hwm = kb.get("VmHWM", 0) * 1024
                group.hwm_bytes[pid] = max(group.hwm_bytes.get(pid, 0), hwm)
                group.started.setdefault(pid, parents[pid][1])
            group.peak_rss_bytes = max(group.peak_rss_bytes, current)
            largest = max(largest, current)
        return largest

    def _watch(self) -> None:
        while not self._stop.wait(POLL_S):
            largest = self.sample()
            low = available_memory_bytes() < MIN_AVAILABLE_BYTES
            if largest > self.memory_cap_bytes or (low and largest > 0):
                logger.warning(
                    "memory: %.1f GB in one process tree (cap %.1f GB), machine"
                    " low: %s; stopping the run",
                    largest / 1e9,
                    self.memory_cap_bytes / 1e9,
                    low,
                )
                self.oom = True
                self._kill_all()
                return

    def _kill_all(self, grace_s: float = 0.0) -> None:
        # Flower detaches some helpers into their own sessions, so besides each
        # started process group, every descendant seen is signalled by pid.
        with self._lock:
            groups = list(self.groups)
        parents = _parents()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for group in groups:
                if group.proc.poll() is None:
                    _signal(os.killpg, group.proc.pid, sig)
                for pid in set(_descendants(group.proc.pid, parents)) | set(
                    group.started
                ):
                    # A remembered pid is signalled only if it is still the
                    # same process (same start time), never a reused pid.
                    alive = parents.get(pid)
                    seen = group.started.get(pid)
                    if pid != group.proc.pid and alive and seen in (None, alive[1]):
                        _signal(os.kill, pid, sig)
            deadline = time.monotonic() + grace_s
            while time.monotonic() < deadline and any(
                g.proc.poll() is None for g in groups
            ):
                time.sleep(0.05)
            parents = _parents()

    def wait(self, group: Group, timeout_s: float) -> int | None:
        """Wait for ``group``'s process to exit; its exit code, None on timeout/OOM."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not self.oom:
            code = group.proc.poll()
            if code is not None:
                self.sample()
                return code
            time.sleep(0.05)
        return None

    def stop_all(self, grace_s: float = 3.0) -> None:
        """Stop the watcher, then every process group (TERM, then KILL)."""
        self._stop.set()
        self._watcher.join(timeout=5.0)
        self._kill_all(grace_s)
        for group in self.groups:
            try:
                group.proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                logger.warning(
                    "process %s (%d) did not exit", group.name, group.proc.pid
                )
        for log in self._logs:
            log.close()
