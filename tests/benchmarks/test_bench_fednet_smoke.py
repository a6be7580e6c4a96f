"""`fednet bench` still runs end to end on tiny workloads (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fednet import cli
from fednet.bench.cli import select_workloads
from fednet.bench.compare import load_flower_runner
from fednet.bench.targets import print_targets

REPO = Path(__file__).resolve().parents[2]


def test_workload_selection_expands_groups_and_resizes() -> None:
    """`w2` names the six W2 workloads; --clients and --params resize."""
    names = [w.name for w in select_workloads("w1,w2", None, None)]
    assert names[0] == "w1" and len(names) == 7
    (scale,) = select_workloads("scale", 50, 100)
    assert (scale.num_clients, scale.synthetic_params) == (50, 100)


@pytest.mark.e2e
def test_bench_runs_tiny_workloads_and_writes_json(tmp_path: Path) -> None:
    """Two clients with a 1,000-parameter model, and a 20-client swarm, finish."""
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fednet",
            "bench",
            "--workloads",
            "w2-p1e3-n2,scale",
            "--clients",
            "20",
            "--params",
            "100",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    results = {r["workload"]: r for r in report["results"]}
    assert set(results) == {"w2-p1e3-n2", "scale"}
    assert all(r["status"] == "finished" for r in results.values())
    assert results["scale"]["num_clients"] == 20
    assert len(results["w2-p1e3-n2"]["round_durations_s"]) == 3
    assert results["w2-p1e3-n2"]["server_peak_rss_mb"] > 0
    assert "w2-p1e3-n2" in proc.stdout and "s/round" in proc.stdout


def test_targets_report_met_missed_and_unmeasured(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each target prints met, MISSED, or not measured, against the reference."""
    results = [
        {
            "workload": "w1",
            "status": "finished",
            "final_accuracy": 0.955,
            "rounds_wall_s": 0.5,
        },
        {
            "workload": "w2-p1e7-n10",
            "status": "finished",
            "s_per_round_median": 0.9,
            "loopback_percent": 18.0,
            "server_peak_rss_mb": 290.0,
            "client_peak_rss_mb": 180.0,
        },
    ]
    print_targets(results, None)
    out = capsys.readouterr().out
    assert (
        "met     W1 accuracy within 0.5 points of Flower: 0.9550 vs Flower 0.9580"
        in out
    )
    assert "met     W2 P=1e7 N=10 <= 1 s/round and >= 6x Flower legacy" in out
    assert "MISSED  W2 P=1e7 N=10 >= 40% of loopback throughput: 18.0%" in out
    assert "-       W2 P=1e7 N=50 completes (not measured by this run)" in out


def test_flower_runner_loads_from_the_source_checkout() -> None:
    """`--flower` finds Flower's runner under benchmarks/flower of the checkout."""
    run_flower = load_flower_runner(REPO)
    assert callable(run_flower) and run_flower.__name__ == "run_flower"


def test_bench_flower_outside_a_checkout_says_it_needs_one(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`fednet bench --flower` away from a checkout exits 2 before any workload."""
    monkeypatch.setattr(cli, "configure_logging", lambda level, fmt: None)
    code = cli.main(["bench", "--flower", "--repo", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 2
    assert "fednet bench: repo:" in captured.err
    assert "needs a fednet source checkout" in captured.err
    assert captured.out == ""
