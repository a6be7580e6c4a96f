"""The shared phase handling speaks each mode's words under each mode's logger."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pytest

from fednet.buffered import BufferedMachine
from fednet.config import RunConfig
from fednet.gossiping import GossipMachine
from fednet.phased import LockstepMachine
from fednet.protocol import FitResult
from fednet.rounds import RoundMachine
from fednet.strategies import FedAvg
from fednet.typing import ClientId, NDArrays

A, B, C = ClientId("a"), ClientId("b"), ClientId("c")
START: NDArrays = [np.zeros(2, np.float32)]


def _rounds() -> RoundMachine:
    config = RunConfig.from_dict({"rounds": 2, "min_clients": 2})
    return RoundMachine(
        run_id=7, config=config, strategy=FedAvg(), parameters=START,
        classes=("0", "1"), rng=np.random.default_rng(0),
    )


def _gossip() -> GossipMachine:
    config = RunConfig.from_dict(
        {"mode": "gossip", "rounds": 2, "min_clients": 2, "gossip_peers": 1}
    )
    return GossipMachine(run_id=7, config=config, parameters=START, classes=None)


@pytest.mark.parametrize(
    ("make", "logger", "unit"),
    [(_rounds, "fednet.rounds", "round"), (_gossip, "fednet.gossiping", "step")],
)
def test_departures_and_short_plays_use_the_modes_unit_and_logger(
    make: Callable[[], LockstepMachine], logger: str, unit: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A client leaving and a play short of min_clients log the mode's word."""
    caplog.set_level(logging.INFO)
    m = make()
    m.clients_available([A, B, C])
    assert m.wait is not None and m.wait.key == f"fit: {unit} 1"

    m.client_left(C)
    m.client_left(B)
    fold = m.accept_update(A, FitResult(7, 1, 1, {}, [np.ones(2, np.float32)]))
    assert fold is not None
    fold.run()
    m.update_folded(fold)

    messages = [(r.name, r.getMessage()) for r in caplog.records]
    assert (logger, f"fit: client b left {unit} 1") in messages
    assert any(
        name == logger and text.endswith(f"playing the {unit} again (attempt 2 of 3)")
        for name, text in messages
    )
    assert m.server_round == 0 and m.progress().phase == "idle"


def test_mode_counters_are_the_server_round() -> None:
    """A gossip step and an async version are the machine's ``server_round``."""
    gossip = _gossip()
    gossip.clients_available([A, B])
    config = RunConfig.from_dict({"mode": "async", "rounds": 2, "min_clients": 1})
    buffered = BufferedMachine(
        run_id=7, config=config, parameters=START, classes=None, next_version=2
    )
    assert (gossip.step, gossip.server_round) == (1, 1)
    assert (buffered.version, buffered.server_round) == (1, 1)
