"""A run warm-started from another begins at the other's final model."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

DIGITS = {
    "task": "digits",
    "model": "logreg",
    "min_clients": 3,
    "local_epochs": 2,
    "learning_rate": 0.1,
    "seed": 3,
    "round_timeout_s": 60.0,
}
# So small a step that one round leaves the model where it started.
STILL = {**DIGITS, "rounds": 1, "learning_rate": 1e-6}


def _refusal(server: Any, **config: Any) -> str:
    """Return the warm_start error of a launch that must be refused."""
    status, body = server.api.request("POST", "/api/runs", config)
    assert status == 400, (status, body[:300])
    reason: str = json.loads(body)["fields"]["warm_start"]
    return reason


def test_warm_start_begins_at_the_earlier_runs_accuracy(
    cluster: Any, server: Any
) -> None:
    """B (warm from A, learning rate 1e-6) scores A's final accuracy; cold B' does not.

    Launches that cannot warm-start are refused with a reason per field:
    an unknown run, a run that completed no round, another model.
    """
    cluster.digits_clients(server, 3)
    assert "no run 999" in _refusal(server, **STILL, warm_start=999)
    waiting = server.api.launch(**{**STILL, "min_clients": 9})
    assert server.api.request("POST", f"/api/runs/{waiting}/stop")[0] == 200
    server.wait_for_run(waiting)
    assert "no model" in _refusal(server, **STILL, warm_start=waiting)

    a_id = server.api.launch(**DIGITS, rounds=4)
    a_run = server.wait_for_run(a_id)
    assert a_run["status"] == "finished", a_run["error"]
    final = a_run["rounds"][-1]["test_accuracy"]
    assert final > 0.8
    reason = _refusal(server, **{**STILL, "model": "mlp"}, warm_start=a_id)
    assert "model='logreg'" in reason and "model='mlp'" in reason

    warm = server.wait_for_run(server.api.launch(**STILL, warm_start=a_id))
    cold = server.wait_for_run(server.api.launch(**STILL))

    assert warm["status"] == cold["status"] == "finished", (warm, cold)
    assert warm["config"]["warm_start"] == a_id
    assert warm["schema"] == a_run["schema"]
    assert abs(warm["rounds"][0]["test_accuracy"] - final) <= 0.01
    assert cold["rounds"][0]["test_accuracy"] < final - 0.3
    assert f"warm start: from the model of run {a_id}" in server.process.output()


def test_warm_start_from_an_uploaded_bundle(cluster: Any, server: Any) -> None:
    """A's bundle, uploaded, is a run; B warm-started from it scores A's accuracy."""
    cluster.digits_clients(server, 3)
    a_run = server.wait_for_run(server.api.launch(**DIGITS, rounds=3))
    assert a_run["status"] == "finished", a_run["error"]
    status, bundle = server.api.request("GET", f"/api/runs/{a_run['id']}/bundle")
    assert status == 200

    upload = requests.post(
        f"{server.http_url}/api/bundles",
        data=bundle,
        headers={"Content-Type": "application/zip"},
        timeout=30,
    )

    assert upload.status_code == 201, upload.text
    imported = server.api.run(upload.json()["id"])
    assert (imported["status"], imported["completed_rounds"]) == ("finished", 3)
    warm = server.wait_for_run(server.api.launch(**STILL, warm_start=imported["id"]))
    assert warm["status"] == "finished", warm["error"]
    final = a_run["rounds"][-1]["test_accuracy"]
    assert abs(warm["rounds"][0]["test_accuracy"] - final) <= 0.01
