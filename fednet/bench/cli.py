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

from fednet.bench.loopback import measure_loopback
from fednet.bench.runner import run_workload
from fednet.bench.workloads import SCALE, W1, W2, Workload, get_workload


def select_workloads(
    names: str, clients: int | None, params: int | None
) -> list[Workload]:
    """Return the workloads a ``--workloads`` value names (``all``, ``w2``, ...)."""
    chosen: list[Workload] = []
    for name in filter(None, (n.strip() for n in names.split(","))):
        if name == "all":
            chosen += [W1, *W2, SCALE]
        elif name == "w2":
            chosen += list(W2)
        else:
            chosen.append(get_workload(name))
    if clients is not None or params is not None:
        chosen = [
            dataclasses.replace(
                w,
                num_clients=(
                    clients
                    if clients is not None and w.kind == "scale"
                    else w.num_clients
                ),
                synthetic_params=(
                    params
                    if params is not None and w.task == "synthetic"
                    else w.synthetic_params
                ),
            )
            for w in chosen
        ]
    return chosen


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(results: list[dict[str, Any]], loopback: float) -> None:
    """Print one row per workload result, with throughput against loopback."""
    print(
        f"{'workload':<18} {'status':<8} {'acc':>6} {'s/round':>8} {'wall s':>7} "
        f"{'srv MB':>7} {'cli MB':>7} {'GB/s':>6} {'%loop':>6} {'conn s':>7}"
    )
    for r in results:
        rate = (
            r["bytes_per_round"] / r["s_per_round_median"]
            if r.get("s_per_round_median")
            else None
        )
        share = 100 * rate / loopback if rate and loopback else None
        print(
            f"{r['workload']:<18} {r['status']:<8} {_fmt(r.get('final_accuracy'), '6.4f')} "
            f"{_fmt(r.get('s_per_round_median'), '8.3f')} {_fmt(r.get('rounds_wall_s'), '7.2f')} "
            f"{_fmt(r.get('server_peak_rss_mb'), '7.0f')} {_fmt(r.get('client_peak_rss_mb'), '7.0f')} "
            f"{_fmt(rate and rate / 1e9, '6.2f')} {_fmt(share, '6.1f')} {_fmt(r.get('connect_s'), '7.2f')}"
        )


def add_bench_parser(sub: Any, common: Any) -> None:
    """Register ``fednet bench`` on the CLI's subparsers."""
    p = sub.add_parser("bench", help="benchmark workloads W1, W2 and scale")
    flags = common(p)
    flags.add(
        "--workloads",
        default="w1,w2-p1e6-n10,w2-p1e7-n10",
        help="comma list: w1, w2, w2-p<P>-n<N>, scale, all",
    )
    flags.add("--clients", type=int, help="clients of the scale workload")
    flags.add("--params", type=int, help="float32 parameters of synthetic workloads")
    flags.add("--json", type=Path, help="also write the results here")
    p.set_defaults(func=bench_command)


def bench_command(args: argparse.Namespace) -> int:
    """Run the selected workloads one after another and report them."""
    workloads = select_workloads(args.workloads, args.clients, args.params)
    loopback = measure_loopback(1.0)
    print(
        f"loopback TCP on 127.0.0.1: {loopback / 1e9:.2f} GB/s; "
        f"{len(workloads)} workloads on {platform.node()}",
        flush=True,
    )
    results = []
    for w in workloads:
        print(
            f"running {w.name} ({w.num_clients} clients, {w.rounds} rounds)...",
            flush=True,
        )
        try:
            results.append(asyncio.run(run_workload(w)))
        except (RuntimeError, OSError) as e:
            results.append(
                {
                    "workload": w.name,
                    "status": "error",
                    "error": str(e),
                    "bytes_per_round": w.bytes_per_round,
                }
            )
            print(f"  {w.name}: {e}", file=sys.stderr)
    print_table(results, loopback)
    if args.json:
        report = {
            "system": "fednet",
            "time": time.time(),
            "machine": platform.platform(),
            "loopback_bytes_per_s": loopback,
            "results": results,
        }
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if all(r["status"] == "finished" for r in results) else 1
