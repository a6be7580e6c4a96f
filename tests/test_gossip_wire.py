"""Gossip on the wire: the hello capability and the relay's ``fit``, bounded."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fednet.config import RunConfig
from fednet.exceptions import ProtocolError
from fednet.fitconfig import FitConfig
from fednet.gossip import average_relay, relay_arrays
from fednet.protocol import Fit, Hello, parse, serialize

GOSSIP = RunConfig(mode="gossip", min_clients=4, gossip_peers=3)


def test_hello_capabilities_round_trip_and_default_to_none() -> None:
    """A new client says gossip; an earlier release's hello has no capabilities."""
    hello = Hello("s", "i", 3, "digits", capabilities=("gossip",))
    again = parse(serialize(hello))
    assert again == hello and isinstance(again, Hello)
    old = json.loads(str(serialize(hello)))
    del old["capabilities"]
    parsed = parse(json.dumps(old))
    assert isinstance(parsed, Hello) and parsed.capabilities == ()


@pytest.mark.parametrize("value", [["x"] * 65, "gossip", [1]])
def test_malformed_capabilities_are_refused(value: object) -> None:
    """At most 64 short strings."""
    hello = json.loads(str(serialize(Hello("s", "i", 3, "digits"))))
    with pytest.raises(ProtocolError, match="capabilities"):
        parse(json.dumps({**hello, "capabilities": value}))


def test_a_gossip_fit_carries_k_plus_1_models_and_round_trips() -> None:
    """peer_models is k in the config; the arrays are own then peers' models."""
    config = FitConfig.for_round(GOSSIP, 2, ("0", "1"))
    assert config.peer_models == 3 and config.to_dict()["peer_models"] == 3
    models = [[np.full(3, v, np.float32)] for v in (1.0, 2.0, 3.0, 6.0)]
    fit = Fit(1, 2, config, relay_arrays(models[0], models[1:]))
    again = parse(serialize(fit))
    assert isinstance(again, Fit) and again == fit
    mean = average_relay(again.parameters, again.config.peer_models)
    np.testing.assert_allclose(mean[0], [3.0, 3.0, 3.0])


def test_sync_and_async_fits_carry_no_peer_models() -> None:
    """Only a gossip run's fit says peer_models; others leave it out."""
    for mode in ("sync", "async"):
        config = FitConfig.for_round(RunConfig(mode=mode), 1, ("0", "1"))
        assert config.peer_models == 0 and "peer_models" not in config.to_dict()


@pytest.mark.parametrize("value", [-1, 17, 2.5, True])
def test_out_of_bound_peer_models_are_refused(value: object) -> None:
    """peer_models is an integer from 0 to MAX_GOSSIP_PEERS (16)."""
    data = FitConfig.for_round(GOSSIP, 1, ("0", "1")).to_dict()
    data["peer_models"] = value
    with pytest.raises(ProtocolError, match="peer_models"):
        FitConfig.from_dict(data)
