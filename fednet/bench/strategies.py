"""The strategies benchmark: W1 per strategy, and the server's memory at P=1e7.

``fednet bench --workloads strategies`` runs W1 (digits, 10 clients, 20
rounds) once per strategy, and the W2 kind of workload at P=10^7, N=20 for
FedAvg and the robust strategies, which hold every update of a round in a
scratch file (docs/strategies.md). :func:`strategy_table` turns the results
into the Markdown table of docs/strategies.md.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from fednet.bench.workloads import W1, Workload, make_w2, with_strategy

# The order of the issue (and of docs/strategies.md's table).
STRATEGY_ORDER = (
    "fedavg",
    "fedprox",
    "fedadam",
    "fedyogi",
    "fedadagrad",
    "fedavgm",
    "fedmedian",
    "fedtrimmedavg",
    "krum",
    "multikrum",
    "fedavg_clipped",
)
ROBUST = ("fedmedian", "fedtrimmedavg", "krum", "multikrum", "fedavg_clipped")
MEMORY_PARAMS = 10_000_000
MEMORY_CLIENTS = 20


def parse_strategies(text: str | None) -> tuple[str, ...]:
    """Return the strategies a ``--strategies`` value names, in the table's order.

    None or ``all`` names every strategy.

    Raises:
        KeyError: if a name is not a strategy.
    """
    if text is None or text.strip() == "all":
        return STRATEGY_ORDER
    names = {n.strip() for n in text.split(",") if n.strip()}
    unknown = names - set(STRATEGY_ORDER)
    if unknown:
        raise KeyError(
            f"unknown strategy {', '.join(sorted(unknown))};"
            f" known: {', '.join(STRATEGY_ORDER)}"
        )
    return tuple(s for s in STRATEGY_ORDER if s in names)


def strategy_workloads(
    strategies: Sequence[str],
    *,
    accuracy: Workload = W1,
    memory: Workload | None = None,
) -> list[Workload]:
    """Return the workloads of the strategies benchmark.

    Args:
        strategies: the strategies to run, each on ``accuracy``.
        accuracy: the workload of accuracy and wall time (W1).
        memory: the workload of the server's peak RSS, run for FedAvg and
            the robust strategies among ``strategies``; W2 at P=10^7, N=20
            by default.

    Returns:
        The ``<accuracy>@<strategy>`` workloads, then the
        ``<memory>@<strategy>`` ones.
    """
    memory = memory or make_w2(MEMORY_PARAMS, MEMORY_CLIENTS)
    chosen = [with_strategy(accuracy, s) for s in strategies]
    chosen += [
        with_strategy(memory, s)
        for s in strategies
        if s == "fedavg" or s in ROBUST
    ]
    return chosen


def _span(results: list[dict[str, Any]], key: str, spec: str) -> str:
    """Format the median of ``key`` over repetitions, with the range if several."""
    values = sorted(r[key] for r in results if r.get(key) is not None)
    if not values:
        return "-"
    shown = format(statistics.median(values), spec)
    if len(values) > 1:
        shown += f" [{values[0]:{spec}}-{values[-1]:{spec}}]"
    return shown


def _by_strategy(
    results: list[dict[str, Any]], kind: str
) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        name = str(r.get("workload", ""))
        if "@" not in name or r.get("status") != "finished":
            continue
        if r.get("kind") == kind:
            grouped.setdefault(name.split("@", 1)[1], []).append(r)
    return grouped


def strategy_table(results: list[dict[str, Any]]) -> str:
    """Return the Markdown table of the strategies benchmark, one row a strategy.

    Figures are medians over the repetitions of a workload, with their range
    in brackets; "-" where a workload was not run or did not finish.
    Accuracy columns come from ``accuracy`` results (W1), memory columns
    from ``system`` ones (W2).
    """
    accuracy = _by_strategy(results, "accuracy")
    memory = _by_strategy(results, "system")
    names = [s for s in STRATEGY_ORDER if s in accuracy or s in memory]
    mem = next(iter(memory.values()), [{}])[0]
    size = _size_label(mem.get("synthetic_params"), mem.get("num_clients"))
    lines = [
        "| strategy | final accuracy | wall time, s | runs"
        f" | server peak RSS, MB{size} | s per round{size} |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for s in names:
        acc, sys_ = accuracy.get(s, []), memory.get(s, [])
        lines.append(
            f"| `{s}` | {_span(acc, 'final_accuracy', '.4f')}"
            f" | {_span(acc, 'rounds_wall_s', '.2f')} | {len(acc) or '-'}"
            f" | {_span(sys_, 'server_peak_rss_mb', '.0f')}"
            f" | {_span(sys_, 's_per_round_median', '.2f')} |"
        )
    return "\n".join(lines)


def _size_label(params: Any, clients: Any) -> str:
    if not params or not clients:
        return ""
    exponent = len(str(params)) - 1
    p = f"1e{exponent}" if params == 10**exponent else str(params)
    return f" (P={p}, N={clients})"
