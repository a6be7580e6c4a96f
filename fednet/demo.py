"""``fednet demo``: a coordinator and non-IID client processes on this machine."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from fednet.follow import follow_run, launch_run
from fednet.processes import Processes

DEMO_CONFIG: dict[str, Any] = {
    "task": "digits",
    "model": "logreg",
    "strategy": "fedavg",
    "local_epochs": 5,
    "batch_size": 32,
    "learning_rate": 0.1,
    "seed": 0,
    "round_timeout_s": 60.0,
}
SITES = ("hospital-a", "hospital-b", "hospital-c", "bank-d", "bank-e", "plant-f")
TARGET_ACCURACY = 0.90


async def _wait_for(
    http: aiohttp.ClientSession, url: str, procs: Processes, ready: Any, what: str
) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if procs.exited():
            raise RuntimeError(
                f"{', '.join(procs.exited())} exited; see {procs.log_dir}"
            )
        try:
            async with http.get(url) as resp:
                if resp.status == 200 and ready(await resp.json(content_type=None)):
                    return
        except (aiohttp.ClientError, OSError, ValueError):
            pass
        await asyncio.sleep(0.3)
    raise RuntimeError(f"timed out waiting for {what}; see {procs.log_dir}")


async def _demo(args: argparse.Namespace, procs: Processes) -> int:
    base = f"http://{args.host}:{args.port}"
    async with aiohttp.ClientSession() as http:
        await _wait_for(http, f"{base}/api/status", procs, lambda s: True, "the server")
        for i in range(1, args.clients + 1):
            name = SITES[i - 1] if i <= len(SITES) else f"site-{i}"
            procs.start(
                name,
                "client",
                "--server",
                f"ws://{args.host}:{args.port}/ws",
                "--name",
                name,
                "--dataset",
                "digits",
                "--partition",
                f"{i}/{args.clients}",
                "--alpha",
                "0.5",
                "--seed",
                "0",
                "--client-port",
                "0",
                "--client-host",
                "127.0.0.1",
            )
        await _wait_for(
            http,
            f"{base}/api/clients",
            procs,
            lambda cs: sum(c["status"] != "disconnected" for c in cs) >= args.clients,
            f"{args.clients} clients",
        )
        print(
            f"{args.clients} clients joined, each with a Dirichlet(0.5) slice of digits"
        )
        config = {**DEMO_CONFIG, "rounds": args.rounds, "min_clients": args.clients}
        run_id = await launch_run(http, base, config)
        run = await follow_run(http, base, run_id)
    accuracy = run.rounds[-1].accuracy if run.rounds else None
    if accuracy is not None:
        verdict = "reached" if accuracy >= TARGET_ACCURACY else "MISSED"
        print(
            f"test accuracy {accuracy:.4f}: {verdict} the {TARGET_ACCURACY:.2f} target"
        )
    return 0 if run.status == "finished" else 1


def run_demo(args: argparse.Namespace) -> int:
    """Start the coordinator and clients, run a session, then serve on or exit."""
    state_dir = args.state_dir or Path(tempfile.mkdtemp(prefix="fednet-demo-"))
    log_dir = state_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    procs = Processes(log_dir)
    procs.start(
        "server",
        "server",
        "--host",
        args.host,
        "--port",
        str(args.port),
        "--state-dir",
        str(state_dir),
        "--no-resume",
    )
    print(f"fednet demo: dashboard on http://localhost:{args.port} (logs in {log_dir})")
    try:
        code = asyncio.run(_demo(args, procs))
        if args.exit_after:
            return code
        print(f"serving on http://localhost:{args.port}; press Ctrl-C to stop")
        while not procs.exited():
            time.sleep(0.5)
        print(f"{', '.join(procs.exited())} exited; see {log_dir}", file=sys.stderr)
        return 1
    except RuntimeError as e:
        print(f"fednet demo: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stopping", file=sys.stderr)
        return 0
    finally:
        procs.stop()
