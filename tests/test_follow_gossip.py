"""`fednet run --mode gossip`: its flags, and the consensus column it prints."""

from __future__ import annotations

import dataclasses

from fednet import cli
from fednet.config import RunConfig
from fednet.follow import CONSENSUS_HEADER, TABLE_HEADER, format_round
from fednet.views import RoundView


def _round(**fields: object) -> RoundView:
    base = dict(
        server_round=3, num_clients=4, num_examples=400, loss=0.2, accuracy=0.95,
        federated_loss=None, federated_accuracy=None, test_loss=0.2,
        test_accuracy=0.95, duration_s=0.12, finished_at=1.0, clients=("a",),
        fit_metrics={"consensus_distance": 0.4213}, evaluated_clients=(),
        dropped=(), rejected={}, client_metrics={},
    )
    return RoundView(**{**base, **fields})  # type: ignore[arg-type]


def test_run_flags_take_mode_gossip_and_its_peers() -> None:
    """--mode gossip --gossip-peers 3 make a valid gossip RunConfig."""
    args = cli.build_parser().parse_args(
        ["run", "--mode", "gossip", "--gossip-peers", "3", "--min-clients", "4"]
    )
    config = RunConfig(**{f.name: getattr(args, f.name)
                          for f in dataclasses.fields(RunConfig)})
    assert (config.mode, config.gossip_peers, config.min_clients) == ("gossip", 3, 4)


def test_a_gossip_row_adds_the_consensus_distance_under_its_header() -> None:
    """The consensus column lines up with its header; other rows have none."""
    row = format_round(_round(), consensus=True)
    header = TABLE_HEADER + CONSENSUS_HEADER
    assert len(row) == len(header) and row.endswith("   0.4213")
    assert format_round(_round()) == row[: len(TABLE_HEADER)]
    assert format_round(_round(fit_metrics={}), consensus=True).endswith("-")
