"""The soak: many runs back to back on one coordinator, its memory and fds after each.

Nothing may be lost: every run must finish with every round in the history.
Memory and file descriptors are printed, run 10 against the last, not judged
by the exit status (a shared machine makes them move a little).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from fednet.bench.runner import (
    follow_run,
    free_port,
    start_clients,
    start_server,
    wait_clients,
)
from fednet.bench.workloads import Workload
from fednet.follow import get_run
from fednet.processes import Processes, open_fds

BASELINE_RUN = 10
"""The run whose figures the last run's are compared with (warm by then)."""
TOLERANCE = 0.10


def rss_mb(pid: int) -> float | None:
    """Return a process's resident memory now (VmRSS) in MB, if readable."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


async def run_soak(w: Workload, *, work_dir: Path | None = None) -> dict[str, Any]:
    """Run ``w.runs`` runs back to back and return the soak's figures.

    ``status`` is ``finished`` when every run finished with all its rounds
    recorded, else ``lost`` (``error`` says what is missing).
    """
    started = time.monotonic()
    work_dir = work_dir or Path(tempfile.mkdtemp(prefix=f"fednet-bench-{w.name}-"))
    (work_dir / "logs").mkdir(parents=True, exist_ok=True)
    procs = Processes(work_dir / "logs")
    port = free_port()
    base, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws"
    start_server(procs, w, port, work_dir)
    samples: list[tuple[float | None, int | None]] = []
    durations: list[float] = []
    try:
        async with aiohttp.ClientSession() as http:
            start_clients(procs, w, ws_url)
            connect_s = await wait_clients(http, base, w.num_clients, procs)
            server = procs.pid("server")
            for number in range(1, w.runs + 1):
                run = await follow_run(http, base, procs, w.to_run_config())
                durations += [r.duration_s for r in run.rounds or ()]
                samples.append((rss_mb(server), open_fds(server)))
                if number % 10 == 0 or number == w.runs:
                    rss, fds = samples[-1]
                    print(f"  run {number}: {run.status}, {rss:.1f} MB, {fds} fds")
            lost = await _lost_history(http, base, w)
    finally:
        procs.stop()
    return {
        "system": "fednet",
        "workload": w.name,
        "status": "lost" if lost else "finished",
        "error": "; ".join(lost[:10]) or None,
        "num_clients": w.num_clients,
        "runs": w.runs,
        "connect_s": connect_s,
        "end_to_end_s": time.monotonic() - started,
        "s_per_round_median": sorted(durations)[len(durations) // 2],
        "server_rss_mb_per_run": [rss for rss, _ in samples],
        "server_fds_per_run": [fds for _, fds in samples],
        **compare_runs(samples),
        "bytes_per_round": w.bytes_per_round,
    }


async def _lost_history(
    http: aiohttp.ClientSession, base: str, w: Workload
) -> list[str]:
    """Return what the history misses: runs not finished, rounds not recorded."""
    lost = []
    for run_id in range(1, w.runs + 1):
        run = await get_run(http, base, run_id)
        rounds = [r.server_round for r in run.rounds or ()]
        if run.status != "finished" or rounds != list(range(1, w.rounds + 1)):
            lost.append(f"run {run_id}: {run.status}, rounds {rounds}")
    return lost


def compare_runs(samples: list[tuple[float | None, int | None]]) -> dict[str, Any]:
    """Return run 10's and the last run's RSS and fds, and their ratios."""
    if not samples:
        return {}
    first = samples[min(BASELINE_RUN, len(samples)) - 1]
    last = samples[-1]
    figures: dict[str, Any] = {"baseline_run": min(BASELINE_RUN, len(samples))}
    for i, key in enumerate(("rss_mb", "fds")):
        before, after = first[i], last[i]
        ratio = after / before if before and after is not None else None
        figures[f"server_{key}_baseline"] = before
        figures[f"server_{key}_last"] = after
        figures[f"server_{key}_ratio"] = ratio
    return figures


def print_soak(result: dict[str, Any]) -> None:
    """Print run 10 against the last run, and whether each stayed within 10%."""
    if "baseline_run" not in result:
        return
    base, last = result["baseline_run"], result["runs"]
    print(f"\nsoak {result['workload']}: run {base} vs run {last}")
    for key, label, spec in (("rss_mb", "RSS MB", ".1f"), ("fds", "fds", "d")):
        before = result[f"server_{key}_baseline"]
        after = result[f"server_{key}_last"]
        ratio = result[f"server_{key}_ratio"]
        if before is None or after is None or ratio is None:
            print(f"  {label}: not readable")
            continue
        verdict = "within" if abs(ratio - 1) <= TOLERANCE else "NOT within"
        print(
            f"  {label}: {format(before, spec)} -> {format(after, spec)}"
            f" ({ratio:.3f}x, {verdict} {TOLERANCE:.0%})"
        )
    lost = f" ({result['error']})" if result["error"] else ""
    print(f"  history: {result['status']}{lost}")
