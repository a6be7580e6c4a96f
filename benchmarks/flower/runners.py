"""Run one workload on Flower's legacy or deployment path; return measurements.

Each run starts real processes over 127.0.0.1 (see :mod:`.procs`), waits for
the server's timeline, and stops every process it started, also on timeout
or when the memory cap is hit (reported as status ``OOM``).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.flower.procs import ProcessSet
from fednet.bench.workloads import Workload

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_DIR = Path(__file__).resolve().parent / "app"
DEFAULT_VENV = REPO_ROOT / "benchmarks" / ".venv-flower"


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """How runs are made: Flower environment, scratch directory, bounds."""

    venv: Path = DEFAULT_VENV
    work_dir: Path
    timeout_s: float = 900.0
    memory_cap_bytes: int = 12 * 10**9

    @property
    def python(self) -> str:
        """Return the Flower environment's interpreter."""
        return str(self.venv / "bin" / "python")

    def env(self, flwr_home: Path) -> dict[str, str]:
        """Return the environment of Flower processes (fednet via PYTHONPATH)."""
        env = dict(os.environ)
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONPATH"] = str(REPO_ROOT)
        env["FLWR_TELEMETRY_ENABLED"] = "0"
        env["FLWR_HOME"] = str(flwr_home)
        env.pop("VIRTUAL_ENV", None)
        return env


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, timeout_s: float, procs: ProcessSet) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not procs.oom:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def _wait_file(path: Path, timeout_s: float, procs: ProcessSet) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not procs.oom:
        if path.exists():
            procs.sample()
            return True
        time.sleep(0.1)
    return False


def _summary(
    workload: Workload,
    path: str,
    status: str,
    timeline: dict[str, Any] | None,
    end_to_end_s: float | None,
    procs: ProcessSet,
    error: str | None = None,
) -> dict[str, Any]:
    rounds = (timeline or {}).get("rounds", [])
    durations = [r["duration_s"] for r in rounds]
    accuracies = [r["accuracy"] for r in rounds if r["accuracy"] is not None]
    servers = [g.peak_mb for g in procs.groups if g.name == "server"]
    if timeline:
        servers.append(float(timeline.get("peak_rss_mb") or 0.0))
    clients = [g.peak_mb for g in procs.groups if g.name.startswith("client-")]
    num_params = int((timeline or {}).get("num_params") or workload.synthetic_params)
    bytes_per_round = num_params * 4 * 2 * workload.num_clients
    median = statistics.median(durations) if durations else None
    complete = len(rounds) == workload.rounds
    return {
        "system": "flower",
        "path": path,
        "workload": workload.name,
        "kind": workload.kind,
        "num_clients": workload.num_clients,
        "num_params": num_params,
        "rounds": workload.rounds,
        "status": status if status != "ok" or complete else "error",
        "error": error,
        "final_accuracy": accuracies[-1] if accuracies else None,
        "accuracy_per_round": accuracies,
        "rounds_wall_s": (timeline or {}).get("rounds_wall_s"),
        "end_to_end_s": end_to_end_s,
        "s_per_round": durations,
        "s_per_round_median": median,
        "server_peak_rss_mb": max(servers) if servers else None,
        "client_peak_rss_mb": max(clients) if clients else None,
        "bytes_per_round": bytes_per_round,
        "model_bytes_per_s": bytes_per_round / median if median else None,
    }


def _read_timeline(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def _finish(
    workload: Workload,
    path: str,
    procs: ProcessSet,
    finished: bool,
    out: Path,
    started: float,
) -> dict[str, Any]:
    end_to_end = time.perf_counter() - started if finished else None
    procs.stop_all()
    timeline = _read_timeline(out) if finished else None
    if procs.oom:
        status, error = "OOM", "memory cap reached; all processes stopped"
    elif timeline is None:
        status, error = "error", "no result before the timeout (see logs)"
    else:
        status, error = "ok", None
    result = _summary(workload, path, status, timeline, end_to_end, procs, error)
    logger.info("flower %s %s: %s", path, workload.name, result["status"])
    return result


def run_legacy(workload: Workload, settings: RunSettings) -> dict[str, Any]:
    """Run ``workload`` with start_server and one start_client process per client."""
    run_dir = settings.work_dir / f"legacy-{workload.name}"
    run_dir.mkdir(parents=True, exist_ok=True)
    env = settings.env(run_dir / "flwr-home")
    out = run_dir / "timeline.json"
    port = free_port()
    base = [settings.python, "-m", "benchmarks.flower.legacy"]
    base += ["--workload", workload.name, "--port", str(port)]
    procs = ProcessSet(settings.memory_cap_bytes)
    started = time.perf_counter()
    try:
        server = procs.start(
            "server", [*base[:3], "server", *base[3:], "--out", str(out)], env,
            run_dir / "server.log",
        )
        for k in range(1, workload.num_clients + 1):
            argv = [*base[:3], "client", *base[3:], "--client", str(k)]
            procs.start(f"client-{k}", argv, env, run_dir / f"client-{k}.log")
        code = procs.wait(server, settings.timeout_s)
        finished = code == 0 and out.exists()
    except BaseException:
        procs.stop_all()
        raise
    return _finish(workload, "legacy", procs, finished, out, started)


def _flower_home(run_dir: Path, port: int) -> Path:
    home = run_dir / "flwr-home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        '[superlink]\ndefault = "bench"\n\n[superlink.bench]\n'
        f'address = "127.0.0.1:{port}"\ninsecure = true\n'
    )
    return home


def run_deployment(
    workload: Workload, settings: RunSettings, secagg: bool = False
) -> dict[str, Any]:
    """Run ``workload`` on a SuperLink with one SuperNode per client (``flwr run``).

    With ``secagg`` the rounds run under Flower's SecAgg+ (path ``secagg``).
    """
    path = "secagg" if secagg else "deployment"
    run_dir = settings.work_dir / f"{path}-{workload.name}"
    run_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = settings.env(_flower_home(run_dir, port))
    out = run_dir / "timeline.json"
    bin_dir = settings.venv / "bin"
    procs = ProcessSet(settings.memory_cap_bytes)
    started = time.perf_counter()
    try:
        link = [str(bin_dir / "flower-superlink"), "--insecure", "--host", "127.0.0.1"]
        link += ["--port", str(port), "--disable-runtime-dependency-installation"]
        procs.start("server", link, env, run_dir / "superlink.log")
        finished = _wait_port(port, 120.0, procs)
        for k in range(1, workload.num_clients + 1):
            node = [str(bin_dir / "flower-supernode"), "--insecure"]
            node += ["--superlink", f"127.0.0.1:{port}", "--port", str(free_port())]
            node += ["--node-config", f"client-number={k}"]
            procs.start(f"client-{k}", node, env, run_dir / f"supernode-{k}.log")
        run_config = f'workload="{workload.name}" result-path="{out}"'
        run_config += f" secagg={'true' if secagg else 'false'}"
        cli = [str(bin_dir / "flwr"), "run", str(APP_DIR), "bench", "-c", run_config]
        submit = procs.start("cli", cli, env, run_dir / "flwr-run.log")
        finished = finished and procs.wait(submit, 300.0) == 0
        remaining = settings.timeout_s - (time.perf_counter() - started)
        finished = finished and _wait_file(out, remaining, procs)
    except BaseException:
        procs.stop_all()
        raise
    return _finish(workload, path, procs, finished, out, started)
