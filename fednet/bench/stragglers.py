"""The stragglers benchmark: FedBuff against FedAvg when some sites are slow.

``fednet bench --workloads stragglers``: 6 digits clients, two of them 5x
slower (``fednet client --fit-delay-s``), on one coordinator. FedAvg plays
its rounds, each waiting for the slow sites; then FedBuff (``mode=async``)
makes model versions from whichever updates arrive. The figures: each run's
final test accuracy and wall time, and how long FedBuff took to first reach
the accuracy FedAvg ended with (from the versions' ``finished_at``).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from fednet.bench.runner import follow_run, free_port, start_server, wait_clients
from fednet.bench.workloads import Workload
from fednet.processes import Processes
from fednet.views import RunView

FAST_DELAY_S = 0.2
SLOW_FACTOR = 5
SLOW_CLIENTS = 2
BUFFER_SIZE = 3
VERSIONS_PER_ROUND = 4
"""FedBuff's versions per FedAvg round (K=3: at most twice the local work)."""


def start_straggling_clients(procs: Processes, w: Workload, ws_url: str) -> None:
    """Start one process per client; the last ``SLOW_CLIENTS`` are the slow ones."""
    n = w.num_clients
    for i in range(1, n + 1):
        slow = i > n - SLOW_CLIENTS
        delay = FAST_DELAY_S * (SLOW_FACTOR if slow else 1)
        args = [
            "client", "--server", ws_url, "--name", f"client-{i}",
            "--dataset", w.task, "--partition", f"{i}/{n}", "--seed", str(w.seed),
            "--client-port", "0", "--client-host", "127.0.0.1",
            "--log-level", "WARNING", "--fit-delay-s", str(delay),
        ]
        if w.alpha is not None:
            args += ["--alpha", str(w.alpha)]
        procs.start(f"client-{i}", *args)


def _figures(run: RunView) -> dict[str, Any]:
    rounds = run.rounds or ()
    wall = None
    if run.finished_at is not None and run.started_at is not None:
        wall = run.finished_at - run.started_at
    return {
        "status": run.status,
        "error": run.error,
        "rounds": len(rounds),
        "final_accuracy": rounds[-1].accuracy if rounds else None,
        "wall_s": wall,
        "accuracy": [r.accuracy for r in rounds],
        "finished_at": [r.finished_at for r in rounds],
    }


def time_to_reach(
    run: dict[str, Any], started_at: float, target: float
) -> float | None:
    """Return the seconds from ``started_at`` to the first round at ``target``."""
    for accuracy, at in zip(run["accuracy"], run["finished_at"]):
        if accuracy is not None and accuracy >= target:
            return float(at - started_at)
    return None


async def run_stragglers(
    w: Workload, *, work_dir: Path | None = None
) -> dict[str, Any]:
    """Run FedAvg, then FedBuff, on the same clients; return both runs' figures."""
    started = time.monotonic()
    work_dir = work_dir or Path(tempfile.mkdtemp(prefix=f"fednet-bench-{w.name}-"))
    (work_dir / "logs").mkdir(parents=True, exist_ok=True)
    procs = Processes(work_dir / "logs")
    port = free_port()
    base, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws"
    start_server(procs, w, port, work_dir)
    config = {**w.to_run_config(), "min_clients": w.num_clients}
    try:
        async with aiohttp.ClientSession() as http:
            start_straggling_clients(procs, w, ws_url)
            await wait_clients(http, base, w.num_clients, procs)
            sync = await follow_run(http, base, procs, config)
            fedbuff = await follow_run(http, base, procs, {
                **config, "mode": "async", "buffer_size": BUFFER_SIZE,
                "rounds": w.rounds * VERSIONS_PER_ROUND,
            })
    finally:
        procs.stop()
    result: dict[str, Any] = {
        "system": "fednet",
        "workload": w.name,
        "kind": w.kind,
        "num_clients": w.num_clients,
        "bytes_per_round": w.bytes_per_round,
        "end_to_end_s": time.monotonic() - started,
        "sync": _figures(sync),
        "async": _figures(fedbuff),
    }
    ok = sync.status == fedbuff.status == "finished"
    result["status"] = "finished" if ok else "failed"
    result["error"] = None if ok else (sync.error or fedbuff.error)
    target = result["sync"]["final_accuracy"]
    if ok and target is not None and fedbuff.started_at is not None:
        for key, goal in (("", target), ("_within_1pt", target - 0.01)):
            result[f"async_time_to_sync_accuracy{key}_s"] = time_to_reach(
                result["async"], fedbuff.started_at, goal
            )
    return result


def print_stragglers(result: dict[str, Any]) -> None:
    """Print the comparison of a stragglers result (nothing for other results)."""
    if result.get("kind") != "stragglers" or result.get("status") != "finished":
        return
    sync, fedbuff = result["sync"], result["async"]
    reach = result.get("async_time_to_sync_accuracy_s")
    near = result.get("async_time_to_sync_accuracy_within_1pt_s")
    print(f"\nstragglers: {result['num_clients']} clients, {SLOW_CLIENTS} of them"
          f" {SLOW_FACTOR}x slower ({FAST_DELAY_S:g} s and"
          f" {FAST_DELAY_S * SLOW_FACTOR:g} s per fit)")
    print("| mode | steps | final accuracy | wall time (s) |")
    print("|---|---:|---:|---:|")
    print(f"| FedAvg (sync) | {sync['rounds']} rounds | {sync['final_accuracy']:.3f}"
          f" | {sync['wall_s']:.1f} |")
    print(f"| FedBuff (async, K={BUFFER_SIZE}) | {fedbuff['rounds']} versions"
          f" | {fedbuff['final_accuracy']:.3f} | {fedbuff['wall_s']:.1f} |")
    for what, seconds in (("FedAvg's final accuracy", reach), ("within 1 point", near)):
        shown = "never" if seconds is None else f"after {seconds:.1f} s"
        print(f"FedBuff reached {what} {shown}")
