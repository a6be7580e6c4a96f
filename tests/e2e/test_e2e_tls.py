"""TLS and mutual TLS with a private CA made by ``fednet ca``, over real sockets."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trustme

from fednet.tlsctx import client_ssl_context
from tests.e2e.e2eutil import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

# Minibatches of one make a round last a few seconds, so the kill lands mid-run.
SLOW_RUN = [
    "--task", "digits", "--model", "logreg", "--local-epochs", "20",
    "--batch-size", "1", "--learning-rate", "0.01", "--seed", "0",
    "--round-timeout-s", "60",
]  # fmt: skip
SITES = ["site-1", "site-2", "site-3"]
NOT_VERIFIED = "TLS: the coordinator's certificate was not verified"


def _fednet(*args: str, cwd: Path) -> str:
    """Run ``python -m fednet ARGS`` to the end; return its output (exit 0)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDNET_")}
    done = subprocess.run(
        [sys.executable, "-m", "fednet", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=cwd,
    )
    assert done.returncode == 0, f"fednet {' '.join(args)}:\n{done.stdout}{done.stderr}"
    return done.stdout


def _make_ca(tmp_path: Path, *sites: str) -> Path:
    """``fednet ca init`` a CA; issue the coordinator's certificate and ``sites``'."""
    folder = tmp_path / "pki"
    _fednet("ca", "init", str(folder), cwd=tmp_path)
    _fednet("ca", "issue", str(folder), "localhost", "--san", "127.0.0.1", cwd=tmp_path)
    for site in sites:
        _fednet("ca", "issue", str(folder), site, cwd=tmp_path)
    return folder


def _tls_server(cluster: Any, pki: Path, *extra: str) -> Any:
    """Start a coordinator serving https and wss with the CA's localhost certificate."""
    return cluster.server(
        "--tls-cert",
        str(pki / "localhost.crt"),
        "--tls-key",
        str(pki / "localhost.key"),
        *extra,
        ssl_context=client_ssl_context(pki / "ca.crt"),
    )


def _gives_up(proc: Any, reason: str) -> None:
    """Wait for a client that retries once to give up; its log must say why."""
    wait_until(lambda: not proc.alive, f"{proc.name} to give up", [])
    assert proc.popen.returncode == 1, proc.output()
    assert reason in proc.output(), proc.output()


def _names(server: Any) -> set[str]:
    return {c["name"] for c in server.api.get("/api/clients")}


def test_run_over_wss_resumes_after_kill_9_and_refuses_an_unverified_client(
    cluster: Any, tmp_path: Path
) -> None:
    """A digits run over wss: kill -9 mid-run, restart, the clients come back alone.

    A client without ``--ca-file`` fails verification, names it and gives up.
    """
    pki = _make_ca(tmp_path)
    ca = str(pki / "ca.crt")
    server = _tls_server(cluster, pki)
    assert server.ws_url.startswith("wss://")
    clients = [
        cluster.client(
            server, name, "--dataset", "digits", "--partition", f"{i}/3",
            "--alpha", "0.5", "--seed", "0", "--ca-file", ca,
        )
        for i, name in enumerate(SITES, start=1)
    ]  # fmt: skip
    stranger = cluster.client(
        server, "stranger", "--dataset", "digits", "--max-retries", "1"
    )
    server.wait_for_clients(3, clients)

    out = _fednet(
        "run", "--server", server.http_url, "--ca-file", ca, "--no-follow",
        "--rounds", "3", "--min-clients", "3", *SLOW_RUN, cwd=tmp_path,
    )  # fmt: skip
    run_id = int(out.strip().splitlines()[-1])
    server.wait_for(lambda: len(server.api.run(run_id)["rounds"]) >= 1, "round 1")
    for client in clients:
        client.pause()
    before = server.api.run(run_id)["rounds"]
    os.killpg(server.process.popen.pid, signal.SIGKILL)
    server.process.popen.wait(30)
    again = cluster.restart(server)
    for client in clients:
        client.resume()
    run = again.wait_for_run(run_id)

    assert run["status"] == "finished", run["error"]
    history = run["rounds"]
    assert [r["server_round"] for r in history] == [1, 2, 3]
    assert history[: len(before)] == before
    log = again.process.output()
    resumed = re.search(rf"resuming run {run_id} after round (\d+)", log)
    assert resumed is not None, "the restarted server did not resume the run"
    for entry in history[int(resumed[1]) :]:
        assert sorted(entry["clients"]) == SITES, "a client did not come back"
    for client in clients:
        assert client.alive
        assert client.output().count("joined wss://") >= 2, client.output()
    weights, bias = again.api.model(run_id)
    assert (weights.shape, bias.shape) == ((64, 10), (10,))

    _gives_up(stranger, NOT_VERIFIED)
    assert "stranger" not in _names(again)
    assert "--ca-file" in stranger.output()


def test_large_updates_travel_over_tls(cluster: Any, tmp_path: Path) -> None:
    """Two 12 MB synthetic updates a round, 2 rounds, over wss: exact average."""
    pki = _make_ca(tmp_path)
    server = _tls_server(cluster, pki)
    clients = [
        cluster.client(
            server, f"s{i}", "--dataset", "synthetic", "--partition", f"{i}/2",
            "--ca-file", str(pki / "ca.crt"),
        )
        for i in (1, 2)
    ]  # fmt: skip
    server.wait_for_clients(2, clients)
    params = 3_000_000
    run_id = server.api.launch(
        task="synthetic", synthetic_params=params, rounds=2, min_clients=2
    )
    run = server.wait_for_run(run_id)

    assert run["status"] == "finished", run["error"]
    assert [sorted(r["clients"]) for r in run["rounds"]] == [["s1", "s2"]] * 2
    (model,) = server.api.model(run_id)
    # Each round adds the mean offset 1e-3 * (1 + 2) / 2.
    np.testing.assert_allclose(model, np.full(params, 3e-3, np.float32), rtol=1e-5)
    stats = server.api.get("/api/status")["stats"]
    assert stats["bytes_received"] > 2 * 2 * 4 * params


def test_mutual_tls_admits_only_the_site_named_by_its_certificate(
    cluster: Any, tmp_path: Path
) -> None:
    """Under --tls-client-ca only site-1 with its own certificate joins and trains.

    Refused: a certificate from another CA (handshake), site-1's certificate
    under another name (hello), no certificate (upgrade).
    """
    pki = _make_ca(tmp_path, "site-1")
    ca = str(pki / "ca.crt")
    server = _tls_server(cluster, pki, "--tls-client-ca", ca)
    other = tmp_path / "other-ca-site-2.pem"
    stranger = trustme.CA().issue_cert("site-2", common_name="site-2")
    stranger.private_key_and_cert_chain_pem.write_to_path(str(other))
    own = ("--tls-cert", str(pki / "site-1.crt"), "--tls-key", str(pki / "site-1.key"))
    digits = ("--dataset", "digits", "--ca-file", ca, "--max-retries", "1")
    site = cluster.client(server, "site-1", *digits, *own)
    foreign = cluster.client(
        server, "site-2", *digits, "--tls-cert", str(other), "--tls-key", str(other)
    )
    borrowed = cluster.client(server, "site-3", *digits, *own)
    bare = cluster.client(server, "site-4", *digits)

    server.wait_for_clients(1, [site])
    run_id = server.api.launch(task="digits", rounds=1, min_clients=1)
    run = server.wait_for_run(run_id)
    assert run["status"] == "finished", run["error"]
    assert run["rounds"][0]["clients"] == ["site-1"]

    _gives_up(foreign, "does the coordinator trust this client's certificate")
    _gives_up(borrowed, "the client certificate is for 'site-1', not 'site-3'")
    _gives_up(bare, "401")
    log = server.process.output()
    assert "a client certificate is required" in log
    assert _names(server) == {"site-1"}
    assert site.alive
