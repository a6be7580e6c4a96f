"""A secure-aggregation run as the API and the run page show it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from fednet.config import RunConfig
from fednet.records import RoundRecord
from fednet.server.keys import STORE
from fednet.typing import ClientId
from tests.server.conftest import AppFactory

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
SECURE = RunConfig(secure_aggregation=True, secagg_threshold=7, min_clients=7)


def _record(server_round: int, recovered: int) -> RoundRecord:
    return RoundRecord(
        server_round=server_round, clients=(ClientId("site-a"),), num_examples=10,
        fit_metrics={}, federated_loss=None, federated_accuracy=None,
        evaluated_clients=(), test_loss=0.4, test_accuracy=0.9, dropped=(),
        rejected={}, client_metrics={}, dropouts_recovered=recovered,
        quantization_error=2.5e-8 * (server_round + 1),
    )


async def test_api_shows_threshold_and_dropouts_recovered(
    make_client: AppFactory,
) -> None:
    """privacy has the threshold and the run's dropouts; each round its own."""
    client = await make_client()
    store = client.app[STORE]
    run_id = store.create_run(SECURE.to_dict(), 1.0)
    store.record_round(run_id, _record(1, 3), 0.5, 2.0)
    store.record_round(run_id, _record(2, 0), 0.5, 3.0)
    store.record_round(run_id, _record(3, 1), 0.5, 4.0)
    run = await (await client.get(f"/api/runs/{run_id}")).json()
    assert run["privacy"] == {
        "secure_aggregation": True, "threshold": 7, "dropouts_recovered": 4,
        "epsilon": None, "delta": None, "budget": None,
    }
    assert [r["dropouts_recovered"] for r in run["rounds"]] == [3, 0, 1]
    assert [r["quantization_error"] for r in run["rounds"]] == [5e-8, 7.5e-8, 1e-7]
    listed = await (await client.get("/api/runs")).json()
    assert listed[0]["privacy"]["dropouts_recovered"] == 4


async def test_a_plain_run_shows_no_secure_aggregation(
    make_client: AppFactory,
) -> None:
    """Without secure aggregation: off, no threshold, rounds without dropouts."""
    client = await make_client()
    store = client.app[STORE]
    run_id = store.create_run(RunConfig().to_dict(), 1.0)
    plain = dataclasses.replace(
        _record(1, 0), dropouts_recovered=None, quantization_error=None
    )
    store.record_round(run_id, plain, 0.5, 2.0)
    run = await (await client.get(f"/api/runs/{run_id}")).json()
    assert run["privacy"]["secure_aggregation"] is False
    assert run["privacy"]["threshold"] is None
    assert run["rounds"][0]["dropouts_recovered"] is None
    assert run["rounds"][0]["quantization_error"] is None


async def test_run_page_shows_the_secure_aggregation_card(
    make_client: AppFactory,
) -> None:
    """The run page names the threshold, the dropouts, the clip and the error."""
    client = await make_client(web_dir=WEB_DIR)  # this tree's templates
    store = client.app[STORE]
    run_id = store.create_run(SECURE.to_dict(), 1.0)
    store.record_round(run_id, _record(1, 3), 0.5, 2.0)
    store.record_round(run_id, _record(2, 0), 0.5, 3.0)
    page = await (await client.get(f"/runs/{run_id}")).text()
    assert 'id="secure-aggregation"' in page
    assert '<dd id="secagg-threshold">7 sites</dd>' in page
    assert '<dd id="secagg-dropouts">3</dd>' in page
    assert "1: 3 · 2: 0 dropouts recovered" in page
    # The largest of the rounds' bounds.
    assert '<dd id="secagg-error">at most 7.5e-08 per coordinate' in page


async def test_launch_form_has_the_secure_aggregation_fields(
    make_client: AppFactory,
) -> None:
    """The launch form offers secure_aggregation, its threshold and its clip."""
    client = await make_client(web_dir=WEB_DIR)
    page = await (await client.get("/")).text()
    for name in ("secure_aggregation", "secagg_threshold", "secagg_clip"):
        assert f'name="{name}"' in page
