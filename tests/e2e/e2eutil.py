"""HTTP and polling helpers of the end-to-end tests (no processes here)."""

from __future__ import annotations

import io
import json
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import pytest

HOST = "127.0.0.1"
# Generous: two shared cores, and every process imports numpy and scikit-learn.
START_TIMEOUT_S = 60.0
RUN_TIMEOUT_S = 120.0


class Watched(Protocol):
    """Anything with a name that can die while a test waits."""

    name: str

    @property
    def alive(self) -> bool:
        """Return whether it still runs."""


def free_port() -> int:
    """Return a TCP port that was free a moment ago (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class Api:
    """A small synchronous client of the coordinator's HTTP API.

    Args:
        base: ``http://host:port`` or ``https://host:port``.
        token: sent as ``Authorization: Bearer`` (an admin or viewer token).
        ssl_context: verifies an https server (a private CA's, say).
    """

    def __init__(
        self,
        base: str,
        token: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.base = base
        self.token = token
        self.ssl_context = ssl_context

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        """Send one request; return the status and the raw body (no raise on 4xx)."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data else {}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(
            self.base + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(
                req, timeout=10, context=self.ssl_context
            ) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            with e:
                return e.code, e.read()

    def get(self, path: str) -> Any:
        """GET a JSON document; fail the test on a non-200 status."""
        status, body = self.request("GET", path)
        assert status == 200, f"GET {path}: HTTP {status}: {body[:500]!r}"
        return json.loads(body)

    def launch(self, **config: Any) -> int:
        """POST a RunConfig and return the new run's id."""
        status, body = self.request("POST", "/api/runs", config)
        assert status == 201, f"POST /api/runs: HTTP {status}: {body[:500]!r}"
        return int(json.loads(body)["id"])

    def run(self, run_id: int) -> dict[str, Any]:
        """Return ``GET /api/runs/{id}``."""
        run: dict[str, Any] = self.get(f"/api/runs/{run_id}")
        return run

    def model(self, run_id: int) -> list[np.ndarray]:
        """Download a run's global model and load its arrays (no pickle)."""
        status, body = self.request("GET", f"/api/runs/{run_id}/model")
        assert status == 200, f"model of run {run_id}: HTTP {status}"
        with np.load(io.BytesIO(body), allow_pickle=False) as npz:
            return [npz[f"arr_{i}"] for i in range(len(npz.files))]

    def reachable(self) -> bool:
        """Return whether ``GET /healthz`` answers 200."""
        try:
            return self.request("GET", "/healthz")[0] == 200
        except OSError:
            return False


def wait_until(
    ready: Callable[[], bool],
    what: str,
    watched: Sequence[Watched],
    timeout_s: float = START_TIMEOUT_S,
    interval_s: float = 0.1,
) -> None:
    """Poll ``ready`` until it is true; fail early if a watched process exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        dead = [p.name for p in watched if not p.alive]
        if dead:
            pytest.fail(f"{', '.join(dead)} exited while waiting for {what}")
        try:
            if ready():
                return
        except OSError:
            pass  # the server is not listening (yet, or any more)
        time.sleep(interval_s)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
