"""``POST /api/bundles``: an uploaded bundle stored as a run to warm-start from."""

from __future__ import annotations

import io
import json
import re
import zipfile
from typing import Any

import numpy as np
import pytest
from aiohttp.test_utils import TestClient

from fednet.bundle import build_bundle
from fednet.config import RunConfig
from fednet.learning import models
from fednet.learning.datasets import load_builtin_test
from fednet.learning.preprocess import Preprocess
from fednet.server import imports
from fednet.server.keys import STORE
from fednet.views import RunView
from tests.server.conftest import AppFactory

ADMIN, VIEWER = "admin-s3cret", "viewer-s3cret"
ZIP = {"Content-Type": "application/zip"}
AS_ADMIN = {"Authorization": f"Bearer {ADMIN}", **ZIP}
PRE = Preprocess(np.array([1.0, 2.0]), np.array([3.0, 4.0]), indicators=(1,))
SCHEMA = {"feature_names": ["a", "b"], "classes": ["no", "yes"]}
CSV = RunConfig(task="csv", missing_indicator=True).to_dict()

Client = TestClient[Any, Any]


def _bundle(config: dict[str, Any] = CSV, schema: dict[str, Any] = SCHEMA,
            pre: Preprocess = PRE) -> bytes:
    """Return the bundle of a run on another coordinator, after its round 4."""
    run = RunView(id=7, status="finished", config=config,
                  schema={**schema, "preprocess": pre.to_dict()}, error=None,
                  created_at=0.0, started_at=0.0, finished_at=1.0,
                  completed_rounds=4, rounds=())
    params = models.init_params("logreg", pre.width, len(schema["classes"]), seed=1)
    return build_bundle(run, "last", 4, params, pre)


async def _client(make_client: AppFactory) -> Client:
    return await make_client(admin_token=ADMIN, viewer_token=VIEWER)


async def test_a_bundle_becomes_a_run_a_launch_can_warm_start_from(
    make_client: AppFactory,
) -> None:
    """201 with an id; the run holds the bundle's config, schema and model."""
    client = await _client(make_client)
    data = _bundle()

    resp = await client.post("/api/bundles", data=data, headers=AS_ADMIN)

    assert resp.status == 201, await resp.text()
    run_id = (await resp.json())["id"]
    run = await (await client.get(f"/api/runs/{run_id}", headers=AS_ADMIN)).json()
    assert (run["status"], run["rounds"], run["completed_rounds"]) == (
        "finished", [], 4
    )
    assert run["config"] == CSV
    assert run["schema"] == {**SCHEMA, "preprocess": PRE.to_dict()}
    stored = client.server.app[STORE].load_model(run_id, 4)
    expected = models.init_params("logreg", PRE.width, 2, seed=1)
    assert stored is not None and all(
        np.array_equal(a, b) for a, b in zip(stored, expected)
    )
    launch = {**CSV, "warm_start": run_id}
    headers = {"Authorization": f"Bearer {ADMIN}"}
    resp = await client.post("/api/runs", json=launch, headers=headers)
    assert resp.status == 201, await resp.text()
    resp = await client.post("/api/runs", json={**launch, "missing_indicator": False},
                             headers=headers)
    assert resp.status == 400
    assert "missing_indicator" in (await resp.json())["fields"]["warm_start"]


def _rezip(data: bytes, meta_change: dict[str, Any]) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as old:
        meta = json.loads(old.read("bundle.json"))
        model = old.read("model.npz")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as new:
        new.writestr("bundle.json", json.dumps({**meta, **meta_change}))
        new.writestr("model.npz", model)
    return out.getvalue()


def _digits_bundle(classes: list[str]) -> bytes:
    schema = load_builtin_test("digits")[2].to_dict()
    config = RunConfig(task="digits").to_dict()
    scaling = Preprocess(np.zeros(64), np.ones(64))
    return _bundle(config, {**schema, "classes": classes}, scaling)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not a zip", r"not a bundle \(a zip archive\)"),
        (_rezip(_bundle(), {"config": {**CSV, "colour": "red"}}),
         "config is not valid here: .*colour"),
        (_rezip(_bundle(), {"server_round": 0}), "server_round is not a round"),
        (_digits_bundle([str(i) for i in range(9)] + ["ten"]),
         "not those of digits"),
    ],
)
async def test_a_bundle_this_coordinator_cannot_use_is_refused(
    make_client: AppFactory, body: bytes, fragment: str
) -> None:
    client = await _client(make_client)

    resp = await client.post("/api/bundles", data=body, headers=AS_ADMIN)

    assert resp.status == 400
    error = (await resp.json())["error"]
    assert re.search(fragment, error), error
    runs = await (await client.get("/api/runs", headers=AS_ADMIN)).json()
    assert runs == []


async def test_a_digits_bundle_is_stored_without_preprocessing(
    make_client: AppFactory,
) -> None:
    """A built-in data set's rows come standardised: its run stores no preprocess."""
    client = await _client(make_client)

    resp = await client.post(
        "/api/bundles", data=_digits_bundle([str(i) for i in range(10)]),
        headers=AS_ADMIN,
    )

    assert resp.status == 201, await resp.text()
    run = await (await client.get(f"/api/runs/{(await resp.json())['id']}",
                                  headers=AS_ADMIN)).json()
    assert "preprocess" not in run["schema"]


async def test_only_an_admin_uploads_a_zip_body_within_the_bound(
    make_client: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """401 without a token, 403 for a viewer, 415 for JSON, 413 past the bound."""
    client = await _client(make_client)
    data = _bundle()
    monkeypatch.setattr(imports, "MAX_UPLOAD_BYTES", len(data) - 1)

    assert (await client.post("/api/bundles", data=data, headers=ZIP)).status == 401
    viewer = {"Authorization": f"Bearer {VIEWER}", **ZIP}
    assert (await client.post("/api/bundles", data=data, headers=viewer)).status == 403
    as_json = {"Authorization": f"Bearer {ADMIN}"}
    resp = await client.post("/api/bundles", json={}, headers=as_json)
    assert resp.status == 415
    assert (await resp.json())["error"] == "the body must be application/zip"
    resp = await client.post("/api/bundles", data=data, headers=AS_ADMIN)
    assert resp.status == 413 and "at most" in (await resp.json())["error"]
