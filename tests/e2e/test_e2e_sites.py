"""Site identity with real processes: credentials, a run, an impostor, a revocation."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Cluster, Process, Server
from tests.e2e.e2eutil import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

ADMIN = "e2e-admin-token"


def _fednet(*args: str) -> subprocess.CompletedProcess[str]:
    """Run one ``fednet`` administration command to its end."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDNET_")}
    return subprocess.run(
        [sys.executable, "-m", "fednet", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def _add_offline(state_dir: Path, name: str) -> str:
    """``fednet sites add NAME --state-dir`` before any server runs; the credential."""
    done = _fednet("sites", "add", name, "--state-dir", str(state_dir))
    assert done.returncode == 0, done.stderr
    credential = done.stdout.strip()
    assert credential.startswith(f"{name}:"), done.stdout
    return credential


def _site_client(
    cluster: Cluster, server: Server, label: str, credential: str | None, *name: str
) -> Process:
    """Start a digits client with ``--site-token`` (and ``--name``) if given."""
    return cluster.spawn(
        label,
        "client",
        "--server",
        server.ws_url,
        *(("--site-token", credential) if credential else ()),
        *(("--name", *name) if name else ()),
        "--client-host",
        "127.0.0.1",
        "--client-port",
        "0",
        "--heartbeat-s",
        "2",
        "--backoff-initial-s",
        "0.2",
        "--backoff-max-s",
        "1",
        "--dataset",
        "digits",
        "--partition",
        f"{len(cluster.processes) % 3 + 1}/3",
        "--seed",
        "0",
    )


def _audit(state_dir: Path) -> list[tuple[Any, ...]]:
    """Read the audit table straight from the state dir's SQLite file."""
    db = sqlite3.connect(f"file:{state_dir / 'fednet.sqlite3'}?mode=ro", uri=True)
    try:
        return db.execute(
            "SELECT actor, action, target, outcome, detail FROM audit ORDER BY id"
        ).fetchall()
    finally:
        db.close()


def _connected_names(server: Server) -> set[str]:
    return {c["name"] for c in server.connected()}


def test_site_credentials_gate_a_run_an_impostor_and_a_revocation(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Sites added offline run; a wrong name or no credential is refused; a revoked
    site is disconnected and stays out; the audit table records each with its actor.
    """
    state = tmp_path / "state"
    one, two = _add_offline(state, "site-1"), _add_offline(state, "site-2")
    server = cluster.server("--admin-token", ADMIN, state_dir=state, token=ADMIN)
    assert server.api.get("/api/status")["client_auth"] == "sites"
    clients = [
        _site_client(cluster, server, "site-1", one),  # --name from the credential
        _site_client(cluster, server, "site-2", two, "site-2"),
    ]
    server.wait_for_clients(2, clients)
    assert _connected_names(server) == {"site-1", "site-2"}
    run = server.wait_for_run(server.api.launch(rounds=2, min_clients=2))
    assert run["status"] == "finished" and len(run["rounds"]) == 2

    impostor = _site_client(cluster, server, "impostor", one, "site-3")
    stranger = _site_client(cluster, server, "stranger", None, "site-4")
    refusal = "the credential of site 'site-1' was presented under the name 'site-3'"
    wait_until(
        lambda: refusal in impostor.output()
        and "a site credential is required" in server.process.output(),
        "the impostor and the stranger to be refused",
        [server.process, impostor, stranger],
    )
    assert _connected_names(server) == {"site-1", "site-2"}
    impostor.kill()
    stranger.kill()

    done = _fednet(
        "sites", "revoke", "site-2", "--server", server.http_url, "--admin-token", ADMIN
    )
    assert done.returncode == 0, done.stderr
    server.wait_for(lambda: "site-2" not in _connected_names(server), "site-2 to go")
    # The revoked client keeps dialling: each attempt is refused at the upgrade.

    def refused_thrice() -> bool:
        assert "site-2" not in _connected_names(server), "site-2 came back"
        refused = "refused a client from 127.0.0.1: invalid or revoked credential"
        return server.process.output().count(refused) >= 3

    wait_until(refused_thrice, "three refused reconnects", [server.process, clients[1]])
    assert _connected_names(server) == {"site-1"}

    expected = [
        ("cli", "site.add", "site-1", "ok"),
        ("cli", "site.add", "site-2", "ok"),
        ("site:site-1", "client.refused", "site-3", "refused"),
        ("admin", "site.revoke", "site-2", "ok"),
        ("anonymous", "client.refused", None, "refused"),
    ]
    wait_until(
        lambda: all(e in [row[:4] for row in _audit(state)] for e in expected),
        "the audit entries",
        [server.process],
    )
    details = {row[:4]: row[4] for row in _audit(state)}
    assert details[expected[2]].startswith("identity_mismatch: the credential of")
    anonymous = {row[4] for row in _audit(state) if row[0] == "anonymous"}
    assert anonymous == {
        "a site credential is required (--site-token)",  # the stranger
        "invalid or revoked credential",  # site-2 after its revocation
    }
    assert all(two.partition(":")[2] not in str(row) for row in _audit(state))
