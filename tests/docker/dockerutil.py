"""Helpers of the Docker tests: commands, polling and the compose project."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "compose" / "docker-compose.yml"


def run(
    cmd: Sequence[str],
    *,
    timeout: float,
    check: bool = True,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing text output; raise with its output if check fails."""
    result = subprocess.run(
        list(cmd),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=None if env is None else dict(env),
        stdin=subprocess.DEVNULL,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {result.returncode}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def docker() -> str:
    """Return the docker CLI to use."""
    return shutil.which("docker") or "docker"


def wait_for(
    what: str, probe: Callable[[], T | None], *, timeout: float, interval: float = 1.0
) -> T:
    """Poll ``probe`` until it returns something other than None (or time runs out)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
        except (OSError, ValueError, http.client.HTTPException) as e:  # not up yet
            last_error, value = e, None
        if value is not None:
            return value
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout:.0f} s waiting for {what}"
        + (f" (last error: {last_error})" if last_error else "")
    )


def compose_command() -> tuple[str, ...] | None:
    """Return the compose CLI to drive (v1 first, then the v2 plugin), if any."""
    wanted = os.environ.get("FEDNET_TEST_COMPOSE")  # e.g. "docker compose" for v2
    if wanted:
        return tuple(wanted.split())
    if shutil.which("docker-compose"):
        return ("docker-compose",)
    if run([docker(), "compose", "version"], timeout=30, check=False).returncode == 0:
        return (docker(), "compose")
    return None


def host_port(preferred: int = 5000) -> int:
    """Return the preferred port if nothing listens there, else a free one."""
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise AssertionError("no free TCP port")


@dataclass(frozen=True)
class Stack:
    """The compose project under test and the server's HTTP API on the host."""

    command: tuple[str, ...]
    project: str
    env: Mapping[str, str]
    port: int
    ca_file: Path | None = None  # the compose CA: the API is https once it is set

    def compose(
        self,
        *args: str,
        files: Sequence[Path] = (COMPOSE_FILE,),
        timeout: float = 300,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run a compose subcommand on this project."""
        file_args = [arg for f in files for arg in ("-f", str(f))]
        return run(
            [*self.command, "-p", self.project, *file_args, *args],
            timeout=timeout,
            check=check,
            env=self.env,
        )

    def with_env(self, extra: Mapping[str, str]) -> Stack:
        """Return the same project with extra variables for compose's interpolation."""
        return replace(self, env={**self.env, **extra})

    def with_ca(self, ca_file: Path) -> Stack:
        """Return the same project, its API over https verified with ``ca_file``."""
        return replace(self, ca_file=ca_file)

    def read_file(self, service: str, path: str) -> str:
        """Return a text file of a running service's container."""
        return self.compose("exec", "-T", service, "cat", path, timeout=60).stdout

    def base_url(self) -> str:
        """Return the server's URL on the host (https once the CA is known)."""
        scheme = "http" if self.ca_file is None else "https"
        return f"{scheme}://127.0.0.1:{self.port}"

    def container(self, service: str, files: Sequence[Path] = (COMPOSE_FILE,)) -> str:
        """Return the id of the service's (single) container."""
        ids = self.compose("ps", "-q", service, files=files).stdout.split()
        assert len(ids) == 1, f"expected one container for {service}, got {ids}"
        return ids[0]

    @staticmethod
    def docker(
        *args: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a docker CLI command."""
        return run([docker(), *args], timeout=timeout, check=check)

    @staticmethod
    def inspect(container: str, template: str) -> str:
        """Return ``docker inspect --format template`` of a container."""
        return run(
            [docker(), "inspect", "--format", template, container], timeout=30
        ).stdout.strip()

    wait_for = staticmethod(wait_for)

    def wait_for_health(self, container: str, timeout: float = 150) -> str:
        """Wait until a container's health check has a verdict; return it."""

        def probe() -> str | None:
            health = self.inspect(container, "{{.State.Health.Status}}")
            return None if health == "starting" else health

        return wait_for(f"health of {container[:12]}", probe, timeout=timeout)

    def request(
        self, method: str, path: str, body: Any = None, *, admin: bool = True
    ) -> tuple[int, bytes]:
        """Send one HTTP request to the server (as admin unless told not to)."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        token = self.env.get("FEDNET_ADMIN_TOKEN")
        if admin and token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(
            f"{self.base_url()}{path}", data=data, method=method, headers=headers
        )
        context = None
        if self.ca_file is not None:
            context = ssl.create_default_context(cafile=str(self.ca_file))
        try:
            with urllib.request.urlopen(req, timeout=10, context=context) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def get_json(self, path: str) -> Any:
        """GET a JSON document from the server."""
        return json.loads(self.request("GET", path)[1])

    def connected_clients(self) -> list[dict[str, Any]]:
        """Return the clients the server lists as connected."""
        return [
            c for c in self.get_json("/api/clients") if c["status"] != "disconnected"
        ]

    def wait_for_clients(
        self, names: set[str], timeout: float = 180
    ) -> list[dict[str, Any]]:
        """Wait until exactly the named clients are connected; return them."""

        def probe() -> list[dict[str, Any]] | None:
            clients = self.connected_clients()
            return (
                clients if sorted(c["name"] for c in clients) == sorted(names) else None
            )

        return wait_for(f"clients {sorted(names)} connected", probe, timeout=timeout)

    def wait_for_run(self, run_id: int, timeout: float = 600) -> dict[str, Any]:
        """Wait until a run is finished, failed or stopped; return its detail."""

        def probe() -> dict[str, Any] | None:
            detail: dict[str, Any] = self.get_json(f"/api/runs/{run_id}")
            return (
                detail
                if detail["status"] in ("finished", "failed", "stopped")
                else None
            )

        return wait_for(f"run {run_id} to end", probe, timeout=timeout, interval=2)
