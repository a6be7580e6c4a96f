"""Run the benchmark workloads on Flower (legacy gRPC and deployment paths).

Usage (from the repository root, after ``benchmarks/flower/setup.sh``)::

    python benchmarks/flower/run_flower.py --workloads w1,w2 --json out.json

Prints a table and writes JSON (default ``benchmarks/results/flower-<UTC>.json``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fednet.bench import loopback, workloads  # noqa: E402
from benchmarks.flower.runners import (  # noqa: E402
    DEFAULT_VENV,
    REPO_ROOT,
    RunSettings,
    run_deployment,
    run_legacy,
)

PATHS = ("legacy", "deployment")
KNOWN_PATHS = (*PATHS, "secagg")  # secagg: deployment under SecAgg+, on request
DEPLOYMENT_DEFAULT = ("w1", "w2-p1e7-n10")
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"


def expand_workloads(spec: str) -> list[workloads.Workload]:
    """Turn ``w1,w2,scale`` or explicit names (``w2-p1e6-n10``) into workloads."""
    chosen: list[workloads.Workload] = []
    for name in filter(None, (s.strip() for s in spec.split(","))):
        chosen.extend(workloads.W2 if name == "w2" else [workloads.get_workload(name)])
    return chosen


def flower_version(venv: Path) -> str | None:
    """Return the flwr version installed in ``venv``, or None."""
    found = sorted((venv / "lib").glob("python3*/site-packages/flwr-*.dist-info"))
    return found[-1].name.removesuffix(".dist-info").split("-")[1] if found else None


def machine_info() -> dict[str, Any]:
    """Describe the machine the numbers come from."""
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kb / 2**20, 1),
    }


def run_benchmarks(
    chosen: Sequence[workloads.Workload],
    paths: Sequence[str] = PATHS,
    deployment_workloads: Sequence[str] = DEPLOYMENT_DEFAULT,
    settings: RunSettings | None = None,
    loopback_s: float = 1.0,
) -> dict[str, Any]:
    """Run every chosen workload on every path; return the JSON report.

    Args:
        chosen: the workloads.
        paths: ``legacy``, ``deployment`` and/or ``secagg``.
        deployment_workloads: names run on the deployment path (``all`` = all).
        settings: Flower environment and bounds (a temporary work dir if None).
        loopback_s: seconds of the loopback TCP probe (0 skips it).

    Returns:
        ``{"system", "flower_version", "machine", "started", "loopback_bytes_per_s",
        "results": [...]}`` (one result per workload and path).
    """
    with tempfile.TemporaryDirectory(prefix="fednet-flower-") as scratch:
        settings = settings or RunSettings(work_dir=Path(scratch))
        rate = loopback.measure_loopback(loopback_s) if loopback_s > 0 else None
        report: dict[str, Any] = {
            "system": "flower",
            "flower_version": flower_version(settings.venv),
            "machine": machine_info(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "loopback_bytes_per_s": rate,
            "results": [],
        }
        for workload in chosen:
            for path in paths:
                deployed = path in ("deployment", "secagg")
                if deployed and "all" not in deployment_workloads:
                    if workload.name not in deployment_workloads:
                        continue
                if workload.kind == "scale":
                    result = _skipped(workload, path)
                elif path == "legacy":
                    result = run_legacy(workload, settings)
                else:
                    result = run_deployment(workload, settings, path == "secagg")
                if rate and result["model_bytes_per_s"]:
                    result["loopback_fraction"] = result["model_bytes_per_s"] / rate
                report["results"].append(result)
                print(format_row(result), flush=True)
    return report


def _skipped(workload: workloads.Workload, path: str) -> dict[str, Any]:
    # One Flower client process per client does not fit 1,000 clients on
    # this machine; the scale workload is measured on fednet only.
    keys = ["final_accuracy", "rounds_wall_s", "end_to_end_s", "s_per_round_median"]
    keys += ["server_peak_rss_mb", "client_peak_rss_mb", "model_bytes_per_s"]
    return {
        "system": "flower",
        "path": path,
        "workload": workload.name,
        "kind": workload.kind,
        "num_clients": workload.num_clients,
        "status": "skipped",
        "error": "scale is not run on Flower (one process per client)",
        "accuracy_per_round": [],
        "s_per_round": [],
        "bytes_per_round": workload.bytes_per_round,
        **{key: None for key in keys},
    }


def _num(value: Any, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


HEADER = (
    f"{'workload':<14} {'path':<10} {'status':<6} {'acc':>6} {'rounds s':>9}"
    f" {'e2e s':>8} {'s/round':>8} {'srv MB':>8} {'cli MB':>7} {'MB/round':>9}"
    f" {'loopbk%':>7}"
)


def format_row(r: dict[str, Any]) -> str:
    """Format one result as a table row under :data:`HEADER`."""
    fraction = r.get("loopback_fraction")
    return (
        f"{r['workload']:<14} {r['path']:<10} {r['status']:<6}"
        f" {_num(r['final_accuracy'], '.3f'):>6}"
        f" {_num(r['rounds_wall_s'], '.2f'):>9}"
        f" {_num(r['end_to_end_s'], '.1f'):>8}"
        f" {_num(r['s_per_round_median'], '.3f'):>8}"
        f" {_num(r['server_peak_rss_mb'], '.0f'):>8}"
        f" {_num(r['client_peak_rss_mb'], '.0f'):>7}"
        f" {r['bytes_per_round'] / 1e6:>9.1f}"
        f" {_num(None if fraction is None else 100 * fraction, '.1f'):>7}"
    )


def format_table(report: dict[str, Any]) -> str:
    """Return the whole report as a text table."""
    rate = report.get("loopback_bytes_per_s")
    lines = [
        f"Flower {report['flower_version']} on {report['machine']['cpus']} CPUs,"
        f" {report['machine']['memory_gib']} GiB; loopback TCP"
        f" {_num(None if rate is None else rate / 1e9, '.2f')} GB/s",
        HEADER,
    ]
    lines.extend(format_row(r) for r in report["results"])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run, print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="w1,w2", help="w1,w2,scale or names")
    parser.add_argument(
        "--paths", default=",".join(PATHS), help="legacy,deployment,secagg"
    )
    parser.add_argument(
        "--deployment-workloads",
        default=",".join(DEPLOYMENT_DEFAULT),
        help="workloads also run on the deployment path ('all' for every one)",
    )
    parser.add_argument("--json", type=Path, help="output JSON path")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--timeout", type=float, default=900.0, help="s per run")
    parser.add_argument("--memory-cap-gb", type=float, default=12.0)
    parser.add_argument("--loopback-seconds", type=float, default=1.0)
    parser.add_argument("--keep-logs", type=Path, help="keep process logs here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if not (args.venv / "bin" / "python").exists():
        parser.error(f"no Flower environment at {args.venv}; run setup.sh first")
    paths = [p for p in args.paths.split(",") if p]
    if unknown := set(paths) - set(KNOWN_PATHS):
        parser.error(f"unknown paths: {', '.join(sorted(unknown))}")
    with tempfile.TemporaryDirectory(prefix="fednet-flower-") as scratch:
        settings = RunSettings(
            venv=args.venv,
            work_dir=args.keep_logs or Path(scratch),
            timeout_s=args.timeout,
            memory_cap_bytes=int(args.memory_cap_gb * 1e9),
        )
        print(HEADER, flush=True)
        report = run_benchmarks(
            expand_workloads(args.workloads),
            paths,
            args.deployment_workloads.split(","),
            settings,
            args.loopback_seconds,
        )
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = args.json or RESULTS_DIR / f"flower-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(format_table(report))
    print(f"results: {out}")
    accepted = ("ok", "OOM", "skipped")
    return 0 if all(r["status"] in accepted for r in report["results"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
