"""The performance targets fednet holds itself to, checked against bench results."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Results = dict[str, dict[str, Any]]

# Flower 1.42's legacy gRPC path on the same workloads and machine class,
# used when Flower is not run in the same session.
FLOWER_REFERENCE = {
    "w1": {"final_accuracy": 0.958, "rounds_wall_s": 0.75},
    "w2-p1e7-n10": {"s_per_round_median": 6.5},
}


@dataclass(frozen=True)
class Target:
    """One target: what it promises and how to check it."""

    name: str
    check: Callable[[Results, Results], tuple[bool, str] | None]


def _get(results: Results, workload: str, key: str) -> Any:
    return results.get(workload, {}).get(key)


def _w1_accuracy(ours: Results, flower: Results) -> tuple[bool, str] | None:
    acc, ref = _get(ours, "w1", "final_accuracy"), _get(flower, "w1", "final_accuracy")
    if acc is None or ref is None:
        return None
    return acc >= ref - 0.005, f"{acc:.4f} vs Flower {ref:.4f}"


def _w1_time(ours: Results, flower: Results) -> tuple[bool, str] | None:
    wall, ref = _get(ours, "w1", "rounds_wall_s"), _get(flower, "w1", "rounds_wall_s")
    if wall is None or ref is None:
        return None
    return wall <= ref, f"{wall:.2f} s vs Flower {ref:.2f} s for 20 rounds"


def _w2_speed(ours: Results, flower: Results) -> tuple[bool, str] | None:
    mine = _get(ours, "w2-p1e7-n10", "s_per_round_median")
    ref = _get(flower, "w2-p1e7-n10", "s_per_round_median")
    if mine is None or ref is None:
        return None
    ok = mine <= 1.0 and ref / mine >= 6
    return ok, f"{mine:.3f} s/round, {ref / mine:.1f}x Flower's {ref:.2f} s"


def _w2_loopback(ours: Results, flower: Results) -> tuple[bool, str] | None:
    share = _get(ours, "w2-p1e7-n10", "loopback_percent")
    if share is None:
        return None
    return share >= 40, f"{share:.1f}% of loopback TCP in model bytes"


def _w2_n50(ours: Results, flower: Results) -> tuple[bool, str] | None:
    status = _get(ours, "w2-p1e7-n50", "status")
    return None if status is None else (status == "finished", status)


def _server_memory(ours: Results, flower: Results) -> tuple[bool, str] | None:
    peaks = [
        r["server_peak_rss_mb"]
        for name, r in ours.items()
        if name.startswith("w2-p1e7") and r.get("server_peak_rss_mb")
    ]
    if not peaks:
        return None
    return max(peaks) <= 400, f"at most {max(peaks):.0f} MB over {len(peaks)} runs"


def _client_memory(ours: Results, flower: Results) -> tuple[bool, str] | None:
    peak = _get(ours, "w2-p1e7-n10", "client_peak_rss_mb")
    return None if peak is None else (peak <= 200, f"{peak:.0f} MB")


def _scale(ours: Results, flower: Results) -> tuple[bool, str] | None:
    run = ours.get("scale")
    if not run or run.get("num_clients", 0) < 1000:
        return None
    per_round = run.get("s_per_round_median")
    ok = run.get("status") == "finished" and per_round is not None and per_round < 5
    shown = "-" if per_round is None else f"{per_round:.3f}"
    return ok, f"{run['num_clients']} clients, {shown} s/round"


TARGETS = (
    Target("W1 accuracy within 0.5 points of Flower", _w1_accuracy),
    Target("W1 20 rounds no slower than Flower legacy", _w1_time),
    Target("W2 P=1e7 N=10 <= 1 s/round and >= 6x Flower legacy", _w2_speed),
    Target("W2 P=1e7 N=10 >= 40% of loopback throughput", _w2_loopback),
    Target("W2 P=1e7 N=50 completes", _w2_n50),
    Target("server peak RSS <= 400 MB at P=1e7", _server_memory),
    Target("client peak RSS <= 200 MB with a 40 MB model", _client_memory),
    Target("1,000 clients, a small-model round under 5 s", _scale),
)


def flower_baseline(report: dict[str, Any] | None) -> Results:
    """Return Flower's legacy-path figures by workload, measured or the reference."""
    baseline: Results = {k: dict(v) for k, v in FLOWER_REFERENCE.items()}
    for r in (report or {}).get("results", []):
        if r.get("path") == "legacy" and r.get("status") == "ok":
            baseline[r["workload"]] = r
    return baseline


def print_targets(results: list[dict[str, Any]], flower: dict[str, Any] | None) -> None:
    """Print each target as met, MISSED, or not measured by this run."""
    ours = {r["workload"]: r for r in results}
    baseline = flower_baseline(flower)
    source = "measured in this run" if flower else "Flower 1.42 reference figures"
    print(f"\ntargets (Flower: {source})")
    for target in TARGETS:
        outcome = target.check(ours, baseline)
        if outcome is None:
            print(f"  {'-':<7} {target.name} (not measured by this run)")
        else:
            ok, detail = outcome
            print(f"  {'met' if ok else 'MISSED':<7} {target.name}: {detail}")
