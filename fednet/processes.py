"""Child ``fednet`` processes for the demo and the benchmarks, stopped together."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import IO


class Processes:
    """Start ``python -m ...`` children with their output in log files.

    Args:
        log_dir: where ``<name>.log`` files go.
    """

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: dict[str, tuple[subprocess.Popen[bytes], IO[bytes]]] = {}

    def start(
        self, name: str, *args: str, module: str = "fednet"
    ) -> subprocess.Popen[bytes]:
        """Start ``python -m MODULE ARGS`` with its output in ``<name>.log``."""
        log = open(self.log_dir / f"{name}.log", "wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.children[name] = (proc, log)
        return proc

    def pid(self, name: str) -> int:
        """Return the process id of a child."""
        return self.children[name][0].pid

    def exited(self) -> list[str]:
        """Return the names of children that have exited."""
        return [n for n, (proc, _) in self.children.items() if proc.poll() is not None]

    def stop(self, grace_s: float = 10.0) -> None:
        """Terminate every child, then kill those that linger past ``grace_s``."""
        for proc, _ in self.children.values():
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + grace_s
        for proc, log in self.children.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
        self.children.clear()


def peak_rss_mb(pid: int) -> float | None:
    """Return a process's peak resident memory (VmHWM) in MB, if readable."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def open_fds(pid: int) -> int | None:
    """Return how many file descriptors a process holds, if readable."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
