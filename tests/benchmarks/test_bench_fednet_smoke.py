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
from fednet.bench.strategies import ROBUST, STRATEGY_ORDER, strategy_table
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


def test_strategies_group_runs_w1_per_strategy_and_memory_for_robust_ones() -> None:
    """`strategies` names W1 per strategy, then P=1e7 N=20 for FedAvg and robust."""
    names = [w.name for w in select_workloads("strategies", None, None)]
    assert names[:11] == [f"w1@{s}" for s in STRATEGY_ORDER]
    assert names[11:] == [f"w2-p1e7-n20@{s}" for s in ("fedavg", *ROBUST)]
    picked = select_workloads("strategies", None, 100, strategies="krum,fedadam")
    assert [(w.name, w.strategy) for w in picked] == [
        ("w1@fedadam", "fedadam"),
        ("w1@krum", "krum"),
        ("w2-p1e7-n20@krum", "krum"),
    ]
    assert picked[2].synthetic_params == 100
    assert picked[1].to_run_config()["strategy"] == "krum"


def test_strategies_flag_runs_other_workloads_once_per_strategy() -> None:
    """Without the group, --strategies multiplies the named workloads."""
    chosen = select_workloads("w1,w2-p1e3-n2", None, None, strategies="fedyogi,krum")
    assert [w.name for w in chosen] == [
        "w1@fedyogi",
        "w1@krum",
        "w2-p1e3-n2@fedyogi",
        "w2-p1e3-n2@krum",
    ]
    with pytest.raises(KeyError, match="fedsgd"):
        select_workloads("w1", None, None, strategies="fedsgd")
    with pytest.raises(KeyError, match="fedsgd"):
        select_workloads("w1@fedsgd", None, None)


def test_strategy_table_has_a_row_per_strategy_with_medians_and_ranges() -> None:
    """Repetitions collapse into one row: the median and [min-max]."""
    w1 = [
        {"workload": "w1@krum", "kind": "accuracy", "status": "finished",
         "final_accuracy": a, "rounds_wall_s": t}
        for a, t in ((0.9, 2.0), (0.9, 1.0), (0.9, 3.0))
    ]
    memory = {
        "workload": "w2-p1e7-n20@krum", "kind": "system", "status": "finished",
        "synthetic_params": 10_000_000, "num_clients": 20,
        "server_peak_rss_mb": 351.6, "s_per_round_median": 12.0,
    }
    failed = {"workload": "w1@fedavg", "kind": "accuracy", "status": "error"}
    lines = strategy_table([*w1, memory, failed]).splitlines()
    assert len(lines) == 3
    assert "(P=1e7, N=20)" in lines[0]
    assert lines[2] == (
        "| `krum` | 0.9000 [0.9000-0.9000] | 2.00 [1.00-3.00] | 3 | 352 | 12.00 |"
    )
    assert all(line.count("|") == 7 for line in lines)


@pytest.mark.e2e
def test_bench_strategies_prints_the_markdown_table(tmp_path: Path) -> None:
    """Two strategies on a tiny synthetic workload give a two-row table."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fednet",
            "bench",
            "--workloads",
            "w2-p1e3-n3",
            "--strategies",
            "fedavg,krum",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = [line for line in proc.stdout.splitlines() if line.startswith("|")]
    assert len(table) == 4
    assert table[0].startswith("| strategy | final accuracy | wall time, s |")
    assert [row.split(" | ")[0] for row in table[2:]] == ["| `fedavg`", "| `krum`"]
    assert all(row.count("|") == 7 for row in table)


def test_bench_refuses_an_unknown_strategy_naming_the_flag(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad --strategies value exits 2 before any workload runs."""
    monkeypatch.setattr(cli, "configure_logging", lambda level, fmt: None)
    code = cli.main(["bench", "--strategies", "fedavg,fedsgd"])
    err = capsys.readouterr().err
    assert code == 2
    assert "fednet bench: strategies: unknown strategy fedsgd" in err
