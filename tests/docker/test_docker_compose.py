"""The compose network on a real Docker engine: build, join, train, restart."""

from __future__ import annotations

import http.client
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.docker.dockerutil import COMPOSE_FILE, REPO, Stack

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1800)]

CLIENTS = {"hospital-a", "hospital-b", "hospital-c"}
OWN_DATA = REPO / "compose" / "docker-compose.own-data.yml"
RUN_CONFIG = {"task": "digits", "rounds": 5, "local_epochs": 5, "min_clients": 2}


def _launch(stack: Stack, config: dict[str, Any]) -> int:
    status, body = stack.request("POST", "/api/runs", config)
    assert status == 201, body
    run_id: int = json.loads(body)["id"]
    return run_id


def test_up_starts_a_healthy_server_and_three_clients_as_non_root(stack: Stack) -> None:
    """`up -d --build`: a dashboard on the published port, three clients joined.

    With no setup: the coordinator serves https with the `ca` service's
    certificate, on 127.0.0.1 only; the clients join over wss with the join
    token the `ca` service generated; the admin token is the one given.
    """
    clients = stack.wait_for_clients(CLIENTS)

    assert all(c["num_examples"] > 0 for c in clients)
    assert stack.base_url().startswith("https://")
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        urllib.request.urlopen(f"http://127.0.0.1:{stack.port}/healthz", timeout=10)
    server = stack.container("server")
    published = stack.docker("port", server, "5000/tcp").stdout.split()
    assert published == [f"127.0.0.1:{stack.port}"]
    files = stack.read_file("server", "/etc/fednet/coordinator/admin-token")
    assert files.strip() == stack.env["FEDNET_ADMIN_TOKEN"]
    listing = stack.compose("exec", "-T", "server", "ls", "/etc/fednet/coordinator")
    assert "ca.key" not in listing.stdout.split()
    ca_logs = stack.compose("logs", "--no-color", "ca").stdout
    assert "generated the join-token" in ca_logs and "admin-token:" not in ca_logs
    assert stack.env["FEDNET_ADMIN_TOKEN"] not in ca_logs
    status, page = stack.request("GET", "/")
    assert status == 200 and b"<html" in page.lower()
    status, _ = stack.request("POST", "/api/runs", RUN_CONFIG, admin=False)
    assert status == 401
    for service in ("server", *sorted(CLIENTS)):
        container = stack.container(service)
        health = stack.wait_for_health(container)
        assert health == "healthy", f"{service}: {health}"
        assert stack.inspect(container, "{{.Config.User}}") == "10001:10001"


def test_run_finishes_accurately_while_a_client_restarts_mid_run(stack: Stack) -> None:
    """A client restarted mid-run: the run still finishes and the client rejoins."""
    before = {c["name"]: c for c in stack.wait_for_clients(CLIENTS)}
    hospital_b = stack.container("hospital-b")
    # Frozen, hospital-b cannot answer round 1, so the restart is sure to land mid-run.
    stack.docker("pause", hospital_b)
    try:
        run_id = _launch(stack, RUN_CONFIG)
        stack.wait_for(
            f"run {run_id} running",
            lambda: stack.get_json(f"/api/runs/{run_id}")["status"] == "running"
            or None,
            timeout=60,
        )
        stack.docker("restart", "--time", "5", hospital_b)
    finally:
        if stack.inspect(hospital_b, "{{.State.Paused}}") == "true":
            stack.docker("unpause", hospital_b)

    detail = stack.wait_for_run(run_id)

    assert detail["status"] == "finished", detail["error"]
    assert [r["server_round"] for r in detail["rounds"]] == [1, 2, 3, 4, 5]
    assert detail["rounds"][-1]["accuracy"] >= 0.85
    after = {c["name"]: c for c in stack.wait_for_clients(CLIENTS, timeout=120)}
    assert (
        after["hospital-b"]["connected_since"] > before["hospital-b"]["connected_since"]
    )
    assert (
        after["hospital-a"]["connected_since"]
        == before["hospital-a"]["connected_since"]
    )


def test_state_volume_keeps_run_history_across_down_and_up(stack: Stack) -> None:
    """`down` without -v then `up -d`: the server still lists the finished run."""
    stack.wait_for_clients(CLIENTS)
    run_id = _launch(stack, {**RUN_CONFIG, "rounds": 1, "local_epochs": 1})
    assert stack.wait_for_run(run_id)["status"] == "finished"

    stack.compose("down", timeout=300)
    stack.compose("up", "-d", timeout=600)
    stack.wait_for_clients(CLIENTS)

    runs = {r["id"]: r for r in stack.get_json("/api/runs")}
    assert runs[run_id]["status"] == "finished"
    # The `ca` service ran again and kept the CA: the old certificate still verifies.
    assert stack.ca_file is not None
    ca = stack.read_file("server", "/etc/fednet/coordinator/ca.crt")
    assert ca == stack.ca_file.read_text()


def test_client_with_unreadable_csv_exits_naming_the_problem(
    stack: Stack, tmp_path: Path
) -> None:
    """Own-data override with a broken CSV: the client says why, others carry on."""
    stack.wait_for_clients(CLIENTS)
    bad_csv = tmp_path / "site.csv"
    bad_csv.write_text("age,weight\n41,not-a-number\n")
    bad_csv.chmod(0o644)
    files = (COMPOSE_FILE, OWN_DATA)
    env_csv = {
        "FEDNET_OWN_CSV": str(bad_csv),
        "FEDNET_OWN_LABEL": "diagnosis",
        "FEDNET_OWN_NAME": "broken-site",
    }
    own = stack.with_env(env_csv)

    def stopped() -> tuple[str, str, int] | None:
        state = own.inspect(
            own.container("own-site", files=files),
            "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}",
        ).split()
        status, exit_code, restarts = state[0], state[1], int(state[2])
        return (
            (status, exit_code, restarts) if status != "running" or restarts else None
        )

    try:
        own.compose("up", "-d", "--no-deps", "own-site", files=files)
        status, exit_code, restarts = own.wait_for(
            "own-site to stop", stopped, timeout=120
        )
        logs = own.compose("logs", "--no-color", "own-site", files=files).stdout
    finally:
        own.compose("rm", "--stop", "--force", "own-site", files=files, check=False)

    # restart: on-failure brings it back only after a non-zero exit.
    assert restarts > 0 or exit_code not in ("", "0"), (status, exit_code)
    assert "/data/site.csv" in logs and "'diagnosis'" in logs, logs
    assert "Traceback" not in logs, logs
    assert {c["name"] for c in stack.connected_clients()} == CLIENTS


def test_client_without_data_exits_naming_the_problem(stack: Stack) -> None:
    """A client container with neither CSV nor dataset exits with a clear message."""
    result = stack.docker(
        "run",
        "--rm",
        "--network",
        "common-net",
        "-e",
        "FEDNET_SERVER=ws://server:5000/ws",
        "-e",
        "FEDNET_NAME=no-data",
        "fednet/fl-client:latest",
        check=False,
    )

    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "--data" in output and "--dataset" in output, output
    assert "Traceback" not in output, output
