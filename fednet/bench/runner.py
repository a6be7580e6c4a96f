"""Run a workload on fednet with real processes over 127.0.0.1 and measure it."""

from __future__ import annotations

import asyncio
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from fednet.bench.workloads import Workload
from fednet.follow import get_run, launch_run
from fednet.processes import Processes, open_fds, peak_rss_mb
from fednet.views import RunView

SWARM_CLIENTS_PER_PROCESS = 250
CONNECT_TIMEOUT_S = 300.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _get(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as resp:
        resp.raise_for_status()
        return await resp.json()


async def _wait_clients(
    http: aiohttp.ClientSession, base: str, count: int, procs: Processes
) -> float:
    started = time.monotonic()
    while time.monotonic() - started < CONNECT_TIMEOUT_S:
        if procs.exited():
            raise RuntimeError(f"{procs.exited()} exited; logs in {procs.log_dir}")
        try:
            status = await _get(http, f"{base}/api/status")
            if status["clients_connected"] >= count:
                return time.monotonic() - started
        except (aiohttp.ClientError, OSError):
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{count} clients did not connect in {CONNECT_TIMEOUT_S:.0f} s")


def _start_clients(procs: Processes, w: Workload, ws_url: str) -> None:
    n = w.num_clients
    if w.kind == "scale":
        for first in range(1, n + 1, SWARM_CLIENTS_PER_PROCESS):
            count = min(SWARM_CLIENTS_PER_PROCESS, n - first + 1)
            procs.start(
                f"swarm-{first}",
                "--server",
                ws_url,
                "--clients",
                str(count),
                "--first",
                str(first),
                "--total",
                str(n),
                module="fednet.bench.swarm",
            )
        return
    for i in range(1, n + 1):
        args = [
            "client",
            "--server",
            ws_url,
            "--name",
            f"client-{i}",
            "--dataset",
            w.task,
            "--partition",
            f"{i}/{n}",
            "--seed",
            str(w.seed),
            "--client-port",
            "0",
            "--client-host",
            "127.0.0.1",
            "--log-level",
            "WARNING",
        ]
        if w.alpha is not None:
            args += ["--alpha", str(w.alpha)]
        procs.start(f"client-{i}", *args)


async def run_workload(w: Workload, *, work_dir: Path | None = None) -> dict[str, Any]:
    """Run one workload end to end and return its measurements.

    Keys: final_accuracy, accuracy_per_round, rounds_wall_s, end_to_end_s,
    s_per_round_median, round_durations_s, connect_s, server_peak_rss_mb,
    client_peak_rss_mb, server_fds, bytes_per_round, status, error.
    """
    started = time.monotonic()
    work_dir = work_dir or Path(tempfile.mkdtemp(prefix=f"fednet-bench-{w.name}-"))
    (work_dir / "logs").mkdir(parents=True, exist_ok=True)
    procs = Processes(work_dir / "logs")
    port = free_port()
    base, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws"
    procs.start(
        "server",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--state-dir",
        str(work_dir / "state"),
        "--no-resume",
        "--log-level",
        "WARNING",
    )
    try:
        async with aiohttp.ClientSession() as http:
            _start_clients(procs, w, ws_url)
            connect_s = await _wait_clients(http, base, w.num_clients, procs)
            config = {**w.to_run_config(), "round_timeout_s": 600.0}
            run_id = await launch_run(http, base, config)
            while not (run := await get_run(http, base, run_id)).ended:
                if "server" in procs.exited():
                    raise RuntimeError(f"server exited; logs in {procs.log_dir}")
                await asyncio.sleep(0.1)
            result = _measure(w, run, procs, connect_s, started)
    finally:
        procs.stop()
    return result


def _measure(
    w: Workload, run: RunView, procs: Processes, connect_s: float, started: float
) -> dict[str, Any]:
    rounds = run.rounds or ()
    durations = [r.duration_s for r in rounds]
    client = "client-1" if w.kind != "scale" else "swarm-1"
    accuracy = [r.accuracy for r in rounds]
    wall = None
    if run.finished_at is not None and run.started_at is not None:
        wall = run.finished_at - run.started_at
    return {
        "system": "fednet",
        "workload": w.name,
        "status": run.status,
        "error": run.error,
        "num_clients": w.num_clients,
        "synthetic_params": w.synthetic_params,
        "final_accuracy": accuracy[-1] if accuracy else None,
        "accuracy_per_round": accuracy,
        "rounds_wall_s": wall,
        "end_to_end_s": time.monotonic() - started,
        "round_durations_s": durations,
        "s_per_round_median": statistics.median(durations) if durations else None,
        "connect_s": connect_s,
        "server_peak_rss_mb": peak_rss_mb(procs.pid("server")),
        "client_peak_rss_mb": peak_rss_mb(procs.pid(client)),
        "server_fds": open_fds(procs.pid("server")),
        "bytes_per_round": w.bytes_per_round,
    }
