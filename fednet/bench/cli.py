"""``fednet bench``: run the benchmark workloads and print a table (and JSON)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from fednet.bench.compare import load_flower_runner, print_comparison
from fednet.bench.loopback import measure_loopback
from fednet.bench.runner import run_workload
from fednet.bench.soak import print_soak, run_soak
from fednet.bench.stragglers import print_stragglers, run_stragglers
from fednet.bench.strategies import (
    parse_strategies,
    strategy_table,
    strategy_workloads,
)
from fednet.bench.targets import print_targets
from fednet.bench.workloads import (
    SCALE,
    W1,
    W2,
    Workload,
    get_workload,
    make_load,
    make_soak,
    with_strategy,
)
from fednet.exceptions import ConfigError, FednetError
from fednet.runtime import new_event_loop

COLUMNS = (
    ("workload", "workload", "<18"),
    ("status", "status", "<8"),
    ("acc", "final_accuracy", "6.4f"),
    ("s/round", "s_per_round_median", "8.3f"),
    ("rounds s", "rounds_wall_s", "8.2f"),
    ("srv MB", "server_peak_rss_mb", "7.0f"),
    ("cli MB", "client_peak_rss_mb", "7.0f"),
    ("GB/s", "model_gb_per_s", "6.2f"),
    ("%loop", "loopback_percent", "6.1f"),
    ("conn s", "connect_s", "7.2f"),
    ("fds", "server_fds", "6d"),
    ("feed B/res", "feed_bytes_per_result", "10.0f"),
)


def select_workloads(
    names: str,
    clients: int | None,
    params: int | None,
    runs: int | None = None,
    *,
    strategies: str | None = None,
) -> list[Workload]:
    """Return the workloads a ``--workloads`` value names (``all``, ``w2``, ...).

    ``clients`` resizes the scale and load workloads; ``params`` every
    synthetic one; ``runs`` the soak. ``strategies`` (a comma list) picks
    the strategies of the ``strategies`` group and, when that group is not
    named, runs every other workload once per strategy (``w1@krum``).
    """
    chosen: list[Workload] = []
    group = False
    for name in filter(None, (n.strip() for n in names.split(","))):
        if name == "all":
            chosen += [W1, *W2, SCALE]
        elif name == "w2":
            chosen += list(W2)
        elif name == "strategies":
            group = True
            chosen += strategy_workloads(parse_strategies(strategies))
        else:
            chosen.append(get_workload(name))
    if strategies is not None and not group:
        picked = parse_strategies(strategies)
        chosen = [with_strategy(w, s) for w in chosen for s in picked]
    resized = []
    for w in chosen:
        if clients is not None and w.kind == "scale":
            w = dataclasses.replace(w, num_clients=clients)
        if clients is not None and w.kind == "load":
            w = make_load(clients)
        if runs is not None and w.kind == "soak":
            w = make_soak(runs)
        if params is not None and w.task == "synthetic":
            w = dataclasses.replace(w, synthetic_params=params)
        resized.append(w)
    return resized


def _with_rates(result: dict[str, Any], loopback: float) -> dict[str, Any]:
    per_round = result.get("s_per_round_median")
    rate = result["bytes_per_round"] / per_round if per_round else None
    return {
        **result,
        "model_gb_per_s": rate / 1e9 if rate else None,
        "loopback_percent": 100 * rate / loopback if rate and loopback else None,
    }


def _layout(spec: str) -> str:
    align = "<" if spec.startswith("<") else ">"
    width = "".join(ch for ch in spec.lstrip("<").split(".")[0] if ch.isdigit())
    return f"{align}{width}"


def print_table(results: list[dict[str, Any]]) -> None:
    """Print one row per workload result ("-" where a figure does not apply)."""
    print(" ".join(format(label, _layout(spec)) for label, _, spec in COLUMNS))
    for r in results:
        print(
            " ".join(
                (
                    format("-", _layout(spec))
                    if r.get(key) is None
                    else format(r[key], spec)
                )
                for _, key, spec in COLUMNS
            )
        )


def add_bench_parser(sub: Any, common: Any) -> None:
    """Register ``fednet bench`` on the CLI's subparsers."""
    p = sub.add_parser("bench", help="benchmark workloads W1, W2 and scale")
    flags = common(p)
    flags.add(
        "--workloads",
        default="w1,w2-p1e6-n10,w2-p1e7-n10",
        help="comma list: w1, w2, w2-p<P>-n<N>, scale, load[-n<N>], soak[-r<R>],"
        " strategies, stragglers, all; <workload>@<strategy> runs another strategy",
    )
    flags.add("--strategies", help="comma list of strategies (default: all)")
    flags.add("--repeat", type=int, default=1, help="runs of each workload")
    flags.add("--clients", type=int, help="clients of the scale and load workloads")
    flags.add("--runs", type=int, help="runs of the soak, back to back")
    flags.add("--params", type=int, help="float32 parameters of synthetic workloads")
    flags.add("--json", type=Path, help="also write the results here")
    flags.switch("--flower", help="also run Flower (source checkout) side by side")
    flags.add(
        "--flower-deployment",
        default="w2-p1e7-n10",
        help="workloads also run on Flower's deployment path, or 'all'",
    )
    flags.add(
        "--repo", type=Path, default=Path("."), help="source checkout, for --flower"
    )
    p.set_defaults(func=bench_command)


def _chosen_workloads(args: argparse.Namespace) -> list[Workload]:
    """Return the workloads to run, each ``--repeat`` times in a row.

    Raises:
        ConfigError: naming ``strategies`` or ``workloads`` for an unknown name.
    """
    try:
        parse_strategies(args.strategies)
    except KeyError as e:
        raise ConfigError({"strategies": e.args[0]}) from None
    try:
        workloads = select_workloads(
            args.workloads,
            args.clients,
            args.params,
            args.runs,
            strategies=args.strategies,
        )
    except KeyError as e:
        raise ConfigError({"workloads": e.args[0]}) from None
    return [w for w in workloads for _ in range(max(1, args.repeat))]


def bench_command(args: argparse.Namespace) -> int:
    """Run the selected workloads one after another and report them."""
    workloads = _chosen_workloads(args)
    run_flower = load_flower_runner(args.repo) if args.flower else None
    loopback = measure_loopback(1.0)
    print(
        f"loopback TCP on 127.0.0.1: {loopback / 1e9:.2f} GB/s; "
        f"{len(workloads)} workloads on {platform.node()}",
        flush=True,
    )
    results = []
    for w in workloads:
        runs = f"{w.runs} runs of " if w.runs > 1 else ""
        print(
            f"running {w.name} ({w.num_clients} clients, {runs}{w.rounds} rounds)...",
            flush=True,
        )
        run = {"soak": run_soak, "stragglers": run_stragglers}.get(
            w.kind, run_workload
        )
        try:
            with asyncio.Runner(loop_factory=new_event_loop) as runner:
                result = runner.run(run(w))
        except (RuntimeError, OSError, FednetError) as e:
            result = {
                "workload": w.name,
                "status": "error",
                "error": str(e),
                "bytes_per_round": w.bytes_per_round,
            }
            print(f"  {w.name}: {e}", file=sys.stderr)
        results.append(_with_rates(result, loopback))
    print_table(results)
    for result in results:
        print_soak(result)
        print_stragglers(result)
    if any("@" in w.name for w in workloads):
        print(f"\nstrategies: median [range] of {args.repeat} run(s) each")
        print(strategy_table(results))
    report: dict[str, Any] = {
        "system": "fednet",
        "time": time.time(),
        "machine": platform.platform(),
        "loopback_bytes_per_s": loopback,
        "results": results,
    }
    if run_flower is not None:
        # Flower runs FedAvg only.
        names = list(dict.fromkeys(w.name for w in workloads if "@" not in w.name))
        report["flower"] = run_flower(names, args.flower_deployment, 900.0)
        print_comparison(results, report["flower"])
    print_targets(results, report.get("flower"))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if all(r["status"] == "finished" for r in results) else 1
