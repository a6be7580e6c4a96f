"""A secure run takes only clients that can mask: never an update in the clear."""

from __future__ import annotations

from pathlib import Path

from fednet.config import RunConfig
from fednet.gossip import CLIENT_CAPABILITIES
from fednet.protocol import Hello
from fednet.server.setup import prepare_run
from fednet.server.store import Store


def test_a_client_of_an_earlier_release_is_ineligible_for_a_secure_run(
    tmp_path: Path,
) -> None:
    """It would answer a secure round's fit with its plain update: refused, why said."""
    store = Store(tmp_path)
    config = RunConfig(task="synthetic", synthetic_params=4, secure_aggregation=True,
                       min_clients=2)
    new = Hello("new", "i", 5, "synthetic", capabilities=CLIENT_CAPABILITIES)
    old = Hello("old", "i", 5, "synthetic")
    setup = prepare_run(store, 1, config, 0, [new, old], None)
    assert setup.ineligibility(new) is None
    reason = setup.ineligibility(old)
    assert reason is not None and "secagg capability" in reason
    assert "in the clear" in reason
    plain = prepare_run(store, 2, RunConfig(task="synthetic", synthetic_params=4),
                        0, [old], None)
    assert plain.ineligibility(old) is None
    store.close()
