"""Load the Flower harness of a source checkout and print both systems side by side."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fednet.exceptions import ConfigError

RUNNER = Path("benchmarks") / "flower" / "compare.py"
FlowerRunner = Callable[[list[str], str, float], dict[str, Any]]

# (label, key, format, better): ratios are Flower / fednet, so > 1 means
# fednet is faster or leaner for "lower is better" figures.
COLUMNS = (
    ("final acc", "final_accuracy", ".4f", "higher"),
    ("s/round", "s_per_round_median", ".3f", "lower"),
    ("rounds s", "rounds_wall_s", ".2f", "lower"),
    ("server MB", "server_peak_rss_mb", ".0f", "lower"),
    ("client MB", "client_peak_rss_mb", ".0f", "lower"),
)


def load_flower_runner(repo: Path) -> FlowerRunner:
    """Return ``run_flower`` of a source checkout's Flower benchmarks.

    Flower is never part of the package: its harness lives under
    ``benchmarks/flower`` of a checkout and is loaded from there by path.

    Raises:
        ConfigError: if ``repo`` is not a fednet source checkout.
    """
    path = repo / RUNNER
    spec = importlib.util.spec_from_file_location("fednet_flower_runner", path)
    if not path.is_file() or spec is None or spec.loader is None:
        raise ConfigError(
            {
                "repo": f"{path} not found: --flower needs a fednet source"
                " checkout; run from its root or give it with --repo"
            }
        )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    runner: FlowerRunner = module.run_flower
    return runner


def _cell(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _ratio(ours: Any, theirs: Any, better: str) -> str:
    if not ours or not theirs:
        return "-"
    if better == "higher":
        return f"{100 * (ours - theirs):+.1f} pt"
    return f"{theirs / ours:.1f}x"


def print_comparison(ours: list[dict[str, Any]], flower: dict[str, Any]) -> None:
    """Print, per workload and figure, fednet, each Flower path, and the ratio.

    Times and memory show Flower / fednet (above 1x: fednet is better);
    accuracy shows fednet minus Flower in points.
    """
    by_key = {(r["workload"], r["path"]): r for r in flower.get("results", [])}
    print(
        f"\n{'workload':<14} {'figure':<10} {'fednet':>9} {'flwr legacy':>12} "
        f"{'ratio':>8} {'flwr deploy':>12} {'ratio':>8}"
    )
    for mine in ours:
        legacy = by_key.get((mine["workload"], "legacy"), {})
        deploy = by_key.get((mine["workload"], "deployment"), {})
        for label, key, spec, better in COLUMNS:
            values = (mine.get(key), legacy.get(key), deploy.get(key))
            if all(v is None for v in values):
                continue
            status = [legacy.get("status"), deploy.get("status")]
            cells = [
                _cell(v, spec) if s in (None, "ok") or v is not None else str(s)
                for v, s in zip(values[1:], status)
            ]
            print(
                f"{mine['workload']:<14} {label:<10} {_cell(values[0], spec):>9} "
                f"{cells[0]:>12} {_ratio(values[0], values[1], better):>8} "
                f"{cells[1]:>12} {_ratio(values[0], values[2], better):>8}"
            )
