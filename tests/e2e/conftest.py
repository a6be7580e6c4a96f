"""Fixtures that run real ``fednet server`` and ``fednet client`` processes over TCP.

Every process is started as ``python -m fednet ...`` on 127.0.0.1 with a
temporary state folder; its output goes to a log file that is printed when a
test fails, and every process is killed when the test ends.
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from tests.e2e.e2eutil import HOST, RUN_TIMEOUT_S, Api, free_port, wait_until


@dataclass
class Process:
    """One ``python -m fednet`` child with its log file."""

    name: str
    args: tuple[str, ...]
    popen: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]

    @property
    def alive(self) -> bool:
        """Return whether the process is still running."""
        return self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the process and wait for it to exit."""
        if self.alive:
            self.popen.send_signal(sig)
        self.popen.wait(30)

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): it neither computes nor answers."""
        self.popen.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused process go on (SIGCONT)."""
        self.popen.send_signal(signal.SIGCONT)

    def output(self) -> str:
        """Return what the process wrote so far (it writes to the file directly)."""
        return self.log_path.read_text(errors="replace")


@dataclass
class Cluster:
    """Start, track and stop the processes of one test."""

    tmp_path: Path
    processes: list[Process] = field(default_factory=list)

    def spawn(self, name: str, *args: str, cwd: Path | None = None) -> Process:
        """Start ``python -m fednet ARGS`` with its output in ``<name>.log``."""
        log_path = self.tmp_path / "logs" / f"{name}-{len(self.processes)}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "wb")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env = {k: v for k, v in env.items() if not k.startswith("FEDNET_")}
        popen = subprocess.Popen(
            [sys.executable, "-m", "fednet", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd or self.tmp_path,
            env=env,
            start_new_session=True,
        )
        proc = Process(name, tuple(args), popen, log_path, log)
        self.processes.append(proc)
        return proc

    def server(
        self,
        *extra: str,
        port: int | None = None,
        state_dir: Path | None = None,
        token: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> Server:
        """Start a coordinator (with ``extra`` flags) and wait for ``/healthz``.

        ``token`` goes with every API call; ``ssl_context`` (for a server
        given ``--tls-cert``) makes the API https and the clients dial wss.
        """
        port = port or free_port()
        state_dir = state_dir or self.tmp_path / "state"
        args = (
            "server",
            "--host",
            HOST,
            "--port",
            str(port),
            "--state-dir",
            str(state_dir),
            "--heartbeat-s",
            "2",
            *extra,
        )
        proc = self.spawn("server", *args)
        scheme = "http" if ssl_context is None else "https"
        api = Api(f"{scheme}://{HOST}:{port}", token, ssl_context)
        server = Server(proc, port, state_dir, api, scheme)
        wait_until(server.api.reachable, "the server to answer /healthz", [proc])
        return server

    def restart(self, server: Server) -> Server:
        """Start the same ``fednet server`` command again (same port, state dir)."""
        proc = self.spawn("server", *server.process.args)
        again = Server(proc, server.port, server.state_dir, server.api, server.scheme)
        wait_until(again.api.reachable, "the restarted server", [proc])
        return again

    def client(self, server: Server, name: str, *data_args: str) -> Process:
        """Start a client of ``server`` holding the data ``data_args`` name."""
        return self.spawn(
            name,
            "client",
            "--server",
            server.ws_url,
            "--name",
            name,
            "--client-host",
            HOST,
            "--client-port",
            "0",
            "--heartbeat-s",
            "2",
            "--backoff-initial-s",
            "0.2",
            "--backoff-max-s",
            "1",
            *data_args,
        )

    def digits_clients(self, server: Server, count: int = 3) -> list[Process]:
        """Start ``count`` clients on Dirichlet(0.5) slices of digits; wait for them."""
        procs = [
            self.client(
                server,
                f"site-{i}",
                "--dataset",
                "digits",
                "--partition",
                f"{i}/{count}",
                "--alpha",
                "0.5",
                "--seed",
                "0",
            )
            for i in range(1, count + 1)
        ]
        server.wait_for_clients(count, procs)
        return procs

    def logs(self) -> str:
        """Return every process's output, one section per process."""
        parts = []
        for proc in self.processes:
            code = proc.popen.poll()
            parts.append(
                f"----- {proc.name} (exit {code}) {' '.join(proc.args)}\n"
                f"{proc.output()[-20000:]}"
            )
        return "\n".join(parts)

    def stop(self) -> None:
        """Kill every process that is still running and close the logs."""
        for proc in self.processes:
            if proc.alive:
                try:
                    os.killpg(proc.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for proc in self.processes:
            proc.popen.wait(30)
            proc.log.close()


@dataclass
class Server:
    """A running coordinator process and its API."""

    process: Process
    port: int
    state_dir: Path
    api: Api
    scheme: str = "http"

    @property
    def ws_url(self) -> str:
        """Return the URL clients dial."""
        ws = "wss" if self.scheme == "https" else "ws"
        return f"{ws}://{HOST}:{self.port}/ws"

    @property
    def http_url(self) -> str:
        """Return the base URL of the HTTP API."""
        return f"{self.scheme}://{HOST}:{self.port}"

    def connected(self) -> list[dict[str, Any]]:
        """Return the clients ``GET /api/clients`` shows as connected."""
        clients: list[dict[str, Any]] = self.api.get("/api/clients")
        return [c for c in clients if c["status"] != "disconnected"]

    def wait_for_clients(self, count: int, procs: list[Process]) -> None:
        """Wait until at least ``count`` clients are connected."""
        wait_until(
            lambda: len(self.connected()) >= count,
            f"{count} connected clients",
            [self.process, *procs],
        )

    def wait_for(
        self, ready: Callable[[], bool], what: str, timeout_s: float = RUN_TIMEOUT_S
    ) -> None:
        """Poll ``ready`` until true; fail if this server exits meanwhile."""
        wait_until(ready, what, [self.process], timeout_s)

    def wait_for_run(
        self, run_id: int, timeout_s: float = RUN_TIMEOUT_S
    ) -> dict[str, Any]:
        """Wait until a run has ended; return its detail."""
        ended = ("finished", "failed", "stopped")
        wait_until(
            lambda: self.api.run(run_id)["status"] in ended,
            f"run {run_id} to end",
            [self.process],
            timeout_s,
        )
        return self.api.run(run_id)


@pytest.fixture
def server(cluster: Cluster) -> Server:
    """Start a coordinator on a free port with a fresh state folder."""
    return cluster.server()
