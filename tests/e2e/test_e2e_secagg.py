"""Secure aggregation with real processes: the FedAvg it matches, dropouts, failure."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

SECURE = {"secure_aggregation": True, "secagg_threshold": 0.7, "secagg_clip": 1.0}


def _relative_error(got: list[np.ndarray], want: list[np.ndarray]) -> float:
    diff = np.sqrt(sum(float(np.sum((g - w) ** 2.0)) for g, w in zip(got, want)))
    norm = np.sqrt(sum(float(np.sum(w.astype(np.float64) ** 2)) for w in want))
    return float(diff / norm)


def test_a_secure_run_matches_plaintext_fedavg_of_the_same_seed(
    cluster: Any, server: Any
) -> None:
    """3 digits sites, 3 rounds: the secure model is plain FedAvg's within 1e-6."""
    cluster.digits_clients(server, 3)
    config = {"task": "digits", "rounds": 3, "min_clients": 3, "seed": 0}
    plain = server.api.launch(**config)
    assert server.wait_for_run(plain)["status"] == "finished", cluster.logs()
    secure = server.api.launch(**config, **SECURE)
    run = server.wait_for_run(secure)

    assert run["status"] == "finished", cluster.logs()
    assert [r["num_clients"] for r in run["rounds"]] == [3, 3, 3]
    assert [r["dropouts_recovered"] for r in run["rounds"]] == [0, 0, 0]
    # 3 sites at the default clip: each bound about 3 * 1 / ((2^32 - 1) / 3) or less.
    assert all(0 < r["quantization_error"] < 3e-9 for r in run["rounds"])
    assert run["privacy"]["secure_aggregation"] is True
    # This release's sites all announce AES-128-CTR, so the coordinator uses it.
    assert "round 3 is secure, aes128-ctr masks" in cluster.logs()
    error = _relative_error(server.api.model(secure), server.api.model(plain))
    assert 0 < error <= 1e-6, error


def _synthetic_sites(
    cluster: Any, server: Any, count: int, exiting: int
) -> list[Any]:
    """Start ``count`` synthetic sites; the last ``exiting`` die after masking."""
    procs = []
    for i in range(1, count + 1):
        extra = ("--exit-after-masked",) if i > count - exiting else ()
        procs.append(cluster.client(
            server, f"site-{i:02d}", "--dataset", "synthetic",
            "--partition", f"{i}/{count}", *extra,
        ))
    server.wait_for_clients(count, procs)
    return procs


SYNTHETIC = {"task": "synthetic", "rounds": 1, "synthetic_params": 100_000,
             "seed": 3, "round_timeout_s": 20.0}


def test_three_sites_killed_after_masked_input_are_recovered(
    cluster: Any, server: Any
) -> None:
    """10 sites, threshold 7, 3 exit after masking: the sum of all 10 comes out."""
    procs = _synthetic_sites(cluster, server, 10, exiting=3)
    plain = server.api.launch(**SYNTHETIC, min_clients=10)
    assert server.wait_for_run(plain)["status"] == "finished", cluster.logs()
    secure = server.api.launch(**SYNTHETIC, min_clients=10, **SECURE)
    run = server.wait_for_run(secure)

    assert run["status"] == "finished", cluster.logs()
    (entry,) = run["rounds"]
    assert entry["num_clients"] == 10 and entry["num_examples"] == 10
    assert entry["dropouts_recovered"] == 3
    assert run["privacy"]["dropouts_recovered"] == 3
    assert run["privacy"]["threshold"] == 0.7
    assert [p.alive for p in procs].count(False) == 3
    got, want = server.api.model(secure), server.api.model(plain)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-6)


def test_four_sites_killed_after_masked_input_fail_the_round(
    cluster: Any, server: Any
) -> None:
    """10 sites, threshold 7, 4 exit after masking: that play fails with the reason.

    With ``min_clients`` 6 the round is played again with the 6 sites left
    (threshold 0.7 of 6 is 5) and the run finishes; a count threshold of 7
    cannot be met by 6 sites, so a second run fails after its 3 plays.
    """
    _synthetic_sites(cluster, server, 10, exiting=4)
    first = server.api.launch(**SYNTHETIC, min_clients=6, **SECURE)
    run = server.wait_for_run(first)

    assert run["status"] == "finished", cluster.logs()
    assert run["rounds"][0]["num_clients"] == 6
    reason = "failed at stage unmask: round failed: only 6 unmask responses,"
    assert f"{reason} threshold 7; playing the round again" in (
        server.process.output()
    ), cluster.logs()
    second = server.api.launch(
        **{**SYNTHETIC, **SECURE, "secagg_threshold": 7}, min_clients=6
    )
    failed = server.wait_for_run(second)
    assert failed["status"] == "failed"
    assert failed["error"] == (
        "round 1: secure aggregation: threshold 7 exceeds the 6 sites of the"
        " round (3 attempts)"
    )


def test_distributed_dp_runs_over_secure_aggregation(cluster: Any, server: Any) -> None:
    """3 digits sites add their noise shares: every round accounted, none in clear."""
    from fednet.privacy import accountant

    cluster.digits_clients(server, 3)
    secure = server.api.launch(
        task="digits", rounds=2, min_clients=3, seed=0, dp="distributed",
        dp_noise_multiplier=1.0, dp_clip_norm=1.0, **{**SECURE, "secagg_clip": 7.0},
    )
    run = server.wait_for_run(secure)

    assert run["status"] == "finished", cluster.logs()
    assert [r["num_clients"] for r in run["rounds"]] == [3, 3]
    for entry in run["rounds"]:
        want = accountant.epsilon(1.0, 1.0, entry["server_round"], 1e-5)
        assert entry["epsilon"] == pytest.approx(want, rel=1e-9)
        assert entry["client_metrics"] == {} or all(
            "train_loss" not in m for m in entry["client_metrics"].values()
        )
    privacy = run["privacy"]
    assert privacy["secure_aggregation"] is True and privacy["epsilon"] > 0
