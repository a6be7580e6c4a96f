"""Time a secure-aggregation round against a plain round, N synthetic sites.

    python benchmarks/secagg_rounds.py --params 1000000 --sites 10 --rounds 3

Plays a plain FedAvg run and then the same run with secure aggregation, each
on a fresh coordinator with N fresh ``--dataset synthetic`` clients on
127.0.0.1 (so neither run's peak memory or warm-up shows in the other's), and
prints each run's median round time (the API's ``duration_s``), the ratio, the
coordinator's peak memory and all processes' CPU time per run, and the
secure model's error against the plain one. With ``--signed`` the secure
run's sites get certificates of a fresh CA (``--tls-cert``, ``--tls-key``,
``--ca-file``, over plain ws://), so its rounds are signed and verified
(docs/privacy.md#signed-rounds-a-coordinator-that-lies-is-caught): compare
its secure round with one of a run without ``--signed``. With ``--repeat K``
it plays K plain and K secure runs, alternating, and takes the medians over
every round of each kind (the machine's noise then shows in each pair's ratio).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from fednet import pki
from fednet.processes import Processes, peak_rss_mb


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(base: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base + path, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        raw = answer.read()
    return raw if path.endswith("/model") else json.loads(raw)


def _wait(ready: Any, what: str, timeout_s: float = 1800.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = ready()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.2)
    sys.exit(f"timed out waiting for {what}")


def _play(base: str, config: dict[str, Any]) -> dict[str, Any]:
    run_id = _call(base, "/api/runs", config)["id"]

    def ended() -> dict[str, Any] | None:
        run: dict[str, Any] = _call(base, f"/api/runs/{run_id}")
        return run if run["status"] in ("finished", "failed", "stopped") else None

    run = _wait(ended, f"run {run_id}")
    if run["status"] != "finished":
        sys.exit(f"run {run_id} {run['status']}: {run['error']}")
    return run


def _model(base: str, run_id: int) -> list[np.ndarray]:
    with tempfile.TemporaryFile() as f:
        f.write(_call(base, f"/api/runs/{run_id}/model"))
        f.seek(0)
        with np.load(f) as npz:
            return [npz[k] for k in npz.files]


Session = tuple[dict[str, Any], float | None, list[np.ndarray]]
"""One run's API record, its coordinator's peak RSS (MB) and its final model."""


def _session(args: argparse.Namespace, secure: bool) -> Session:
    """Play one run on a fresh coordinator and sites; return it, the peak, the model."""
    signed = secure and args.signed
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        procs = Processes(Path(tmp))
        try:
            procs.start("server", "server", "--host", "127.0.0.1", "--port",
                        str(port), "--state-dir", str(Path(tmp) / "state"))
            for i in range(1, args.sites + 1):
                procs.start(f"site-{i}", "client", "--server",
                            f"ws://127.0.0.1:{port}/ws", "--name", f"site-{i}",
                            "--dataset", "synthetic", "--partition",
                            f"{i}/{args.sites}", "--client-port", "0",
                            *(_certificate(Path(tmp), f"site-{i}") if signed
                              else ()))
            _wait(lambda: len(_call(base, "/api/clients")) >= args.sites, "sites")
            config = {"task": "synthetic", "synthetic_params": args.params,
                      "rounds": args.rounds, "min_clients": args.sites,
                      "round_timeout_s": 600.0, "secure_aggregation": secure}
            names = ["server"] + [f"site-{i}" for i in range(1, args.sites + 1)]
            before = _cpu_s(procs, names[:1]), _cpu_s(procs, names[1:])
            run = _play(base, config)
            run["cpu_s"] = (_cpu_s(procs, names[:1]) - before[0],
                            _cpu_s(procs, names[1:]) - before[1])
            peak = peak_rss_mb(procs.pid("server"))
            if signed != ("is signed" in (Path(tmp) / "server.log").read_text()):
                sys.exit(f"the secure rounds were {'not ' if signed else ''}signed")
            return run, peak, _model(base, run["id"])
        finally:
            procs.stop()


def main() -> None:
    """Run both sessions and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=int, default=1_000_000)
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--signed", action="store_true", help="sign secure rounds")
    parser.add_argument("--repeat", type=int, default=1,
                        help="play this many plain and secure runs, alternating")
    args = parser.parse_args()
    plains, secures = [], []
    for _ in range(args.repeat):
        plains.append(_session(args, secure=False))
        secures.append(_session(args, secure=True))
    _report(args, plains, secures)


def _cpu_s(procs: Processes, names: list[str]) -> float:
    """Return the CPU seconds (user + system) the named children have used."""
    total = 0
    for name in names:
        with open(f"/proc/{procs.pid(name)}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (man 5 proc)
    return total / os.sysconf("SC_CLK_TCK")


def _certificate(folder: Path, site: str) -> tuple[str, ...]:
    """Issue ``site`` a certificate of the folder's CA (made once); its flags."""
    now = dt.datetime.now(dt.timezone.utc)
    if not (folder / "ca.crt").exists():
        ca = pki.build_ca("bench CA", now)
        (folder / "ca.crt").write_bytes(ca.cert_pem())
        (folder / "ca.key").write_bytes(ca.key_pem())
    ca = pki.load_ca((folder / "ca.crt").read_bytes(), (folder / "ca.key").read_bytes())
    leaf = pki.build_leaf(ca, site, [], now)
    (folder / f"{site}.crt").write_bytes(leaf.cert_pem())
    (folder / f"{site}.key").write_bytes(leaf.key_pem())
    return ("--tls-cert", str(folder / f"{site}.crt"), "--tls-key",
            str(folder / f"{site}.key"), "--ca-file", str(folder / "ca.crt"))


def _report(
    args: argparse.Namespace, plains: list[Session], secures: list[Session]
) -> None:
    """Print the medians over every round of every run, peaks, CPU and error."""
    def median_round(sessions: list[Session]) -> float:
        return float(np.median([r["duration_s"] for run, _, _ in sessions
                                for r in run["rounds"]]))

    nan = float("nan")
    p, s = median_round(plains), median_round(secures)
    print(f"P={args.params} N={args.sites} rounds={args.rounds}"
          f"{' signed' if args.signed else ''}"
          f"{f' runs={args.repeat} each, alternating' if args.repeat > 1 else ''}")
    for name, sessions, note in (("plain", plains, "(median)"),
                                 ("secure", secures, f"({s / p:.2f}x)")):
        peaks = [peak or nan for _, peak, _ in sessions]
        print(f"{name + ' round':13} {median_round(sessions):8.2f} s  {note:9}"
              f" coordinator peak RSS {max(peaks):.0f} MB")
    if args.repeat > 1:
        pairs = [median_round([a]) / median_round([b])
                 for a, b in zip(secures, plains)]
        print("ratio of each pair: " + " ".join(f"{r:.2f}x" for r in pairs))
    for name, sessions in (("plain", plains), ("secure", secures)):
        server, sites = (sum(run["cpu_s"][i] for run, _, _ in sessions)
                         / (args.rounds * args.repeat) for i in (0, 1))
        print(f"CPU per round, {name:6}  {server + sites:.3f} s: coordinator"
              f" {server:.3f} s, sites {sites:.3f} s")
    errors = [_error(got, want) for (_, _, got), (_, _, want) in zip(secures, plains)]
    print(f"secure vs plain model: max abs {max(e[0] for e in errors):.2e},"
          f" relative {max(e[1] for e in errors):.2e}")


def _error(got: list[np.ndarray], want: list[np.ndarray]) -> tuple[float, float]:
    """Return the largest absolute and the relative L2 error of got against want."""
    error = max(float(np.max(np.abs(g.astype(np.float64) - w)))
                for g, w in zip(got, want))
    norm = np.sqrt(sum(float(np.sum(w.astype(np.float64) ** 2)) for w in want))
    diff = np.sqrt(sum(float(np.sum((g.astype(np.float64) - w) ** 2))
                       for g, w in zip(got, want)))
    return error, float(diff / norm)


if __name__ == "__main__":
    main()
