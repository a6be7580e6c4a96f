"""Short load and soak benchmarks: correctness only, never their timings.

The full figures (10,000 clients, 200 runs) come from ``fednet bench
--workloads load-n10000`` and ``make soak``; CI runs 1,000 clients and 20 runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fednet.bench.cli import select_workloads
from fednet.bench.soak import compare_runs
from fednet.bench.stragglers import time_to_reach

pytestmark = pytest.mark.e2e


def _bench(tmp_path: Path, *args: str) -> tuple[dict[str, dict[str, Any]], str]:
    """Run ``fednet bench ARGS --json``; return the results by workload, and stdout."""
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "fednet", "bench", *args, "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    return {r["workload"]: r for r in report["results"]}, proc.stdout


def test_load_and_soak_names_and_sizes() -> None:
    """`load-n<N>` and `soak-r<R>` build the workloads; --clients and --runs resize."""
    load, soak = select_workloads("load-n10000,soak-r200", 1000, None, 20)
    assert (load.num_clients, load.round_clients, load.kind) == (1000, 5, "load")
    assert load.to_run_config()["clients_per_round"] == 5
    assert (soak.runs, soak.num_clients, soak.kind) == (20, 5, "soak")


def test_soak_comparison_takes_run_10_and_the_last() -> None:
    """The soak compares run 10 with the last run, as ratios."""
    samples: list[tuple[float | None, int | None]] = [
        (100.0 + i, 20) for i in range(20)
    ]
    figures = compare_runs(samples)
    assert figures["baseline_run"] == 10
    assert (figures["server_rss_mb_baseline"], figures["server_rss_mb_last"]) == (
        109.0,
        119.0,
    )
    assert figures["server_fds_ratio"] == 1.0


def test_load_of_1000_idle_clients_feeds_dashboards_in_constant_size(
    tmp_path: Path,
) -> None:
    """1,000 clients connect, 3 rounds of 5 finish, progress events stay small."""
    results, stdout = _bench(tmp_path, "--workloads", "load-n20,load-n1000")
    small, large = results["load-n20"], results["load-n1000"]
    assert large["status"] == "finished" and small["status"] == "finished"
    assert large["num_clients"] == 1000 and large["connect_s"] > 0
    assert len(large["round_durations_s"]) == 3
    # Nothing lost at the end: the feed's last word is the run, finished.
    assert large["feed_events"]["round_finished"] == 3
    last_run = large["feed_last_run"]
    assert (last_run["status"], last_run["completed_rounds"]) == ("finished", 3)
    assert large["feed_last_progress"]["selected_count"] == 5
    assert "selected" not in large["feed_last_progress"]
    # The same event at N=20 and N=1000: only digits of times may differ.
    sizes = small["feed_progress_bytes_max"], large["feed_progress_bytes_max"]
    assert abs(sizes[0] - sizes[1]) <= 8, sizes
    assert large["server_fds"] > 1000 and "load-n1000" in stdout


def test_soak_of_20_runs_keeps_every_round(tmp_path: Path) -> None:
    """20 runs back to back all finish with 3 rounds each; figures per run."""
    results, stdout = _bench(tmp_path, "--workloads", "soak-r20")
    soak = results["soak-r20"]
    assert soak["status"] == "finished", soak["error"]
    assert soak["runs"] == 20 and len(soak["server_rss_mb_per_run"]) == 20
    assert all(fds for fds in soak["server_fds_per_run"])
    assert "run 10 vs run 20" in stdout and "history: finished" in stdout


def test_stragglers_workload_and_the_time_to_reach_an_accuracy() -> None:
    """The stragglers workload is selectable; time is counted to the first hit."""
    (w,) = select_workloads("stragglers", None, None)
    assert (w.kind, w.num_clients, w.rounds) == ("stragglers", 6, 10)
    run = {"accuracy": [0.5, None, 0.95, 0.9], "finished_at": [11.0, 12.0, 13.5, 14.0]}
    assert time_to_reach(run, 10.0, 0.95) == 3.5
    assert time_to_reach(run, 10.0, 0.96) is None
