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

from fednet.bench.feed import FeedMeter
from fednet.bench.workloads import Workload
from fednet.follow import get_run, launch_run
from fednet.processes import Processes, open_fds, peak_rss_mb
from fednet.views import RunView

SWARM_CLIENTS_PER_PROCESS = {"scale": 250, "load": 1000, "soak": 5}
"""Clients per swarm process by kind: idle load clients are cheap."""
CONNECT_TIMEOUT_S = 600.0
LOAD_DIALS = 100
"""Dials in flight at once over all swarms of the load workload: under aiohttp's
listen backlog of 128, which a burst of thousands overflows."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _get(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as resp:
        resp.raise_for_status()
        return await resp.json()


async def wait_clients(
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
        await asyncio.sleep(0.2 if count < 2000 else 1.0)  # status costs O(N)
    raise RuntimeError(f"{count} clients did not connect in {CONNECT_TIMEOUT_S:.0f} s")


def start_server(procs: Processes, w: Workload, port: int, work_dir: Path) -> None:
    """Start the coordinator on 127.0.0.1:``port``, with room for every client."""
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
        "--max-clients",
        str(max(10_000, w.num_clients + 100)),
        "--log-level",
        "WARNING",
    )


def start_clients(procs: Processes, w: Workload, ws_url: str) -> None:
    """Start the workload's clients: swarm processes, or a process per client."""
    n = w.num_clients
    if w.kind in SWARM_CLIENTS_PER_PROCESS:
        per_process = SWARM_CLIENTS_PER_PROCESS[w.kind]
        swarms = -(-n // per_process)
        dials = max(1, LOAD_DIALS // swarms) if w.kind == "load" else 0
        for first in range(1, n + 1, per_process):
            count = min(per_process, n - first + 1)
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
                "--connecting",
                str(dials),
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
    client_peak_rss_mb, server_fds, bytes_per_round, status, error, and the
    dashboard feed's figures over the run (``feed_*``, see :class:`FeedMeter`).
    """
    started = time.monotonic()
    work_dir = work_dir or Path(tempfile.mkdtemp(prefix=f"fednet-bench-{w.name}-"))
    (work_dir / "logs").mkdir(parents=True, exist_ok=True)
    procs = Processes(work_dir / "logs")
    port = free_port()
    base, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws"
    start_server(procs, w, port, work_dir)
    try:
        async with aiohttp.ClientSession() as http:
            start_clients(procs, w, ws_url)
            connect_s = await wait_clients(http, base, w.num_clients, procs)
            feed = FeedMeter(http, f"{ws_url}/dashboard")
            await feed.start()
            run = await follow_run(http, base, procs, w.to_run_config())
            await feed.stop()
            result = _measure(w, run, procs, connect_s, started)
            result.update(feed.figures(len(run.rounds or ()) * w.round_clients))
    finally:
        procs.stop()
    return result


async def follow_run(
    http: aiohttp.ClientSession, base: str, procs: Processes, config: dict[str, Any]
) -> RunView:
    """Launch a run and return it, with its rounds, once it has ended.

    Raises:
        RuntimeError: if the coordinator exits meanwhile.
    """
    run_id = await launch_run(http, base, {**config, "round_timeout_s": 600.0})
    delay = 0.01
    while not (run := await get_run(http, base, run_id)).ended:
        if "server" in procs.exited():
            raise RuntimeError(f"server exited; logs in {procs.log_dir}")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)
    return run


def _measure(
    w: Workload, run: RunView, procs: Processes, connect_s: float, started: float
) -> dict[str, Any]:
    rounds = run.rounds or ()
    durations = [r.duration_s for r in rounds]
    client = "swarm-1" if w.kind in SWARM_CLIENTS_PER_PROCESS else "client-1"
    accuracy = [r.accuracy for r in rounds]
    wall = None
    if run.finished_at is not None and run.started_at is not None:
        wall = run.finished_at - run.started_at
    return {
        "system": "fednet",
        "workload": w.name,
        "kind": w.kind,
        "strategy": w.strategy,
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
