"""Signed secure aggregation under mutual TLS, and a coordinator that swaps a key.

The sites' certificates come from ``fednet ca``; the tampering coordinator is
the hidden, test-only ``--test-secagg-swap-key`` (fednet/server/tamper.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_e2e_tls import _make_ca, _tls_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

SITES = ["site-1", "site-2", "site-3"]
SECURE = {"secure_aggregation": True, "secagg_threshold": 3, "secagg_clip": 1.0}
SYNTHETIC = {"task": "synthetic", "synthetic_params": 1000, "seed": 3,
             "min_clients": 3, "round_timeout_s": 20.0}
REFUSED = "refusing to reveal anything: advertisement of site-1: signature does not"


def _sites(
    cluster: Any, server: Any, pki: Path, *, certs: bool, dataset: str = "synthetic"
) -> list[Any]:
    """Start the 3 sites (with their certificates or not) and wait for them."""
    procs = []
    for i, name in enumerate(SITES, start=1):
        own = ("--tls-cert", str(pki / f"{name}.crt"), "--tls-key",
               str(pki / f"{name}.key")) if certs else ()
        procs.append(cluster.client(
            server, name, "--dataset", dataset, "--partition", f"{i}/3",
            "--ca-file", str(pki / "ca.crt"), *own,
        ))
    server.wait_for_clients(3, procs)
    return procs


def test_a_secure_run_under_mutual_tls_is_signed_and_verified(
    cluster: Any, tmp_path: Path
) -> None:
    """3 digits sites, 2 rounds: every site verified the roster and the survivors."""
    pki = _make_ca(tmp_path, *SITES)
    server = _tls_server(cluster, pki, "--tls-client-ca", str(pki / "ca.crt"))
    procs = _sites(cluster, server, pki, certs=True, dataset="digits")
    run_id = server.api.launch(task="digits", rounds=2, min_clients=3, seed=0,
                               **SECURE)
    run = server.wait_for_run(run_id)

    assert run["status"] == "finished", cluster.logs()
    assert [r["num_clients"] for r in run["rounds"]] == [3, 3]
    for proc in procs:
        log = proc.output()
        assert log.count("verified the signed advertisements of 3 sites") == 2, log
        assert log.count("consistency verified: 3 survivors signed") == 2, log
    log = server.process.output()
    assert "round 1 is signed" in log and "round 2 is signed" in log


def test_a_key_swapping_coordinator_is_refused_by_every_site_it_lied_to(
    cluster: Any, tmp_path: Path
) -> None:
    """site-2 and site-3 get site-1's s key swapped: both refuse, the run fails."""
    pki = _make_ca(tmp_path, *SITES)
    server = _tls_server(cluster, pki, "--tls-client-ca", str(pki / "ca.crt"),
                         "--test-secagg-swap-key")
    procs = _sites(cluster, server, pki, certs=True)
    run = server.wait_for_run(server.api.launch(rounds=1, **SYNTHETIC, **SECURE))

    assert run["status"] == "failed", cluster.logs()
    assert "failed at stage share_keys: round failed: only 1 parties shared keys" in (
        run["error"]), run["error"]
    for proc in procs[1:]:
        assert REFUSED in proc.output(), proc.output()
        assert "consistency verified" not in proc.output()
    assert REFUSED not in procs[0].output()


def test_without_certificates_the_same_swap_goes_unnoticed(
    cluster: Any, tmp_path: Path
) -> None:
    """The threat signed rounds remove: nobody refuses, every share is revealed."""
    pki = _make_ca(tmp_path)
    server = _tls_server(cluster, pki, "--test-secagg-swap-key")
    procs = _sites(cluster, server, pki, certs=False)
    run = server.wait_for_run(server.api.launch(rounds=1, **SYNTHETIC, **SECURE))

    assert run["status"] == "finished", cluster.logs()
    assert "roster swaps the s key of site-1" in server.process.output()
    for proc in procs:
        assert "refus" not in proc.output(), proc.output()
