"""A gossip run's pages: steps with their consensus distance; the form's field."""

from __future__ import annotations

import re
from pathlib import Path

from fednet.config import RunConfig
from fednet.records import RoundRecord
from fednet.server.keys import STORE
from fednet.typing import ClientId
from tests.server.conftest import AppFactory

WEB_DIR = Path(__file__).resolve().parents[2] / "web"


def _record(server_round: int, distance: float) -> RoundRecord:
    return RoundRecord(
        server_round=server_round,
        clients=(ClientId("site-a"), ClientId("site-b"), ClientId("site-c")),
        num_examples=300,
        fit_metrics={"consensus_distance": distance},
        federated_loss=None,
        federated_accuracy=None,
        evaluated_clients=(),
        test_loss=0.4,
        test_accuracy=0.9,
        dropped=(),
        rejected={},
        client_metrics={},
    )


async def test_gossip_run_page_shows_steps_and_consensus_distance(
    make_client: AppFactory,
) -> None:
    """The run page counts steps and has a consensus column per step."""
    client = await make_client(web_dir=WEB_DIR)  # this tree's templates
    store = client.app[STORE]
    config = RunConfig(mode="gossip", rounds=5, min_clients=3, gossip_peers=2)
    run_id = store.create_run(config.to_dict(), 1.0)
    for step, distance in ((1, 1.25), (2, 0.5)):
        store.record_round(run_id, _record(step, distance), 0.5, 2.0)
    page = await (await client.get(f"/runs/{run_id}")).text()
    assert "of 5 steps" in page and ">Step</th>" in page
    assert "gossip (k=2 peers)" in page and ">Consensus</th>" in page
    cells = re.findall(r'data-label="Consensus">([^<]*)<', page)
    assert cells == ["1.25", "0.5"]
    rows = await (await client.get(f"/runs/{run_id}/rounds?since=1")).text()
    assert re.findall(r'data-label="Consensus">([^<]*)<', rows) == ["0.5"]


async def test_launch_form_shows_gossip_peers_for_mode_gossip(
    make_client: AppFactory,
) -> None:
    """The gossip_peers input is tied to mode gossip (shown only for it)."""
    client = await make_client(web_dir=WEB_DIR)
    page = await (await client.get("/")).text()
    assert 'value="gossip"' in page
    field = re.search(r'<[^>]*data-modes="([^"]*)"[^>]*>(?:(?!data-modes).)*?'
                      r'name="gossip_peers"', page, re.S)
    assert field is not None and field.group(1) == "gossip"
