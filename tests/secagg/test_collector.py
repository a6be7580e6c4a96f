"""The coordinator state object checks every peer message before folding it."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest

from fednet.secagg.collector import Collector
from fednet.secagg.context import RoundContext, UnmaskResponse
from fednet.secagg.errors import SecAggError
from fednet.secagg.party import Party
from tests.secagg.harness import make_updates, stage_round, stage_shares

SITES = [f"site-{i:02d}" for i in range(10)]
SHAPES: list[tuple[int, ...]] = [(5,), (5, 1)]


def _good() -> list[np.ndarray]:
    return make_updates(1, 10)["site-00"]


@pytest.mark.parametrize(
    ("sender", "arrays", "message"),
    [
        ("nobody", _good(), "unexpected masked input from 'nobody'"),
        ("site-00", _good()[:1], "wrong number of arrays"),
        ("site-00", [np.zeros(5, np.int32), _good()[1]], "array 0 dtype"),
        ("site-00", [np.zeros(6, np.uint32), _good()[1]], r"array 0 shape \(6,\)"),
        ("site-00", "not arrays", "wrong number of arrays"),
    ],
)
def test_bad_masked_inputs_are_rejected(
    sender: str, arrays: list[np.ndarray], message: str
) -> None:
    """Unknown senders and wrong counts, dtypes or shapes are refused."""
    shared = stage_shares(SITES, SHAPES, 7, seed=1)
    with pytest.raises(SecAggError, match=message):
        shared.collector.receive_masked_input(sender, arrays)


def test_second_masked_input_from_one_party_is_rejected() -> None:
    """A party cannot fold its input twice."""
    shared = stage_shares(SITES, SHAPES, 7, seed=2)
    masked = shared.parties[SITES[0]].masked_input(_good(), shared.routed[SITES[0]])
    shared.collector.receive_masked_input(SITES[0], masked)
    with pytest.raises(SecAggError, match="unexpected masked input from 'site-00'"):
        shared.collector.receive_masked_input(SITES[0], masked)


def test_collector_holds_one_sum_not_the_inputs() -> None:
    """After two inputs the collector's state is one model-sized uint32 array."""
    shared = stage_shares(SITES, SHAPES, 7, seed=3)
    for pid in SITES[:2]:
        masked = shared.parties[pid].masked_input(_good(), shared.routed[pid])
        shared.collector.receive_masked_input(pid, masked)
    arrays = [v for v in vars(shared.collector).values() if isinstance(v, np.ndarray)]
    assert [(a.dtype, a.size) for a in arrays] == [(np.uint32, 10)]


def test_bad_unmask_responses_are_rejected() -> None:
    """Non-survivors, repeats and responses naming other owners are refused."""
    staged = stage_round(make_updates(10, 10), 7, drop_before_input=SITES[:1])
    collector = staged.collector
    response = staged.parties[SITES[1]].unmask(staged.request)
    with pytest.raises(SecAggError, match="unexpected unmask response from 'site-00'"):
        collector.receive_unmask(dataclasses.replace(response, sender=SITES[0]))
    with pytest.raises(SecAggError, match="expected site-00"):
        collector.receive_unmask(
            dataclasses.replace(response, s_shares=(("site-05", bytes(66)),))
        )
    with pytest.raises(SecAggError, match="wrong share count"):
        collector.receive_unmask(dataclasses.replace(response, b_shares=()))
    collector.receive_unmask(response)
    with pytest.raises(SecAggError, match="unexpected unmask response from 'site-01'"):
        collector.receive_unmask(response)


def test_corrupt_s_key_shares_are_detected() -> None:
    """Shares that do not rebuild the advertised s key fail the result."""
    staged = stage_round(make_updates(10, 10), 7, drop_before_input=SITES[:1])
    for pid in staged.request.survivors:
        response = staged.parties[pid].unmask(staged.request)
        if pid == SITES[1]:
            (owner, y), = response.s_shares
            forged = (int.from_bytes(y, "big") + 1).to_bytes(66, "big")
            response = UnmaskResponse(pid, ((owner, forged),), response.b_shares)
        staged.collector.receive_unmask(response)
    with pytest.raises(SecAggError, match="shares of site-00 do not match its s key"):
        staged.collector.result()


@pytest.mark.parametrize(
    ("sender", "edit", "message"),
    [
        ("nobody", lambda ms: ms, "unexpected shares from 'nobody'"),
        ("site-00", lambda ms: ms[:-1], "8 share messages from site-00"),
        ("site-01", lambda ms: ms, "shares from site-01 claim site-00"),
        (
            "site-00",
            lambda ms: ms[:-1] + [ms[0]],
            "duplicate shares from site-00 for site-01",
        ),
        (
            "site-00",
            lambda ms: ms[:-1] + [dataclasses.replace(ms[0], receiver="site-00")],
            "shares from site-00 for site-00",
        ),
        ("site-00", lambda ms: ["x"] * 9, "expected EncryptedShares"),
    ],
)
def test_bad_shares_stage_messages_are_rejected(
    sender: str, edit: object, message: str
) -> None:
    """Unknown or false senders, short lists, repeats and self-addressed fail."""
    context = RoundContext("run-1", 3, tuple(SITES), 7)
    rng = random.Random(6)
    parties = [Party(context, p, rng.randbytes) for p in SITES]
    collector = Collector(context, SHAPES)
    for party in parties:
        collector.receive_advertisement(party.advertise())
    messages = parties[0].share_keys(collector.close_advertise())
    with pytest.raises(SecAggError, match=message):
        collector.receive_shares(sender, edit(messages))  # type: ignore[operator]


def test_stage_calls_out_of_order_are_refused() -> None:
    """Folding before keys are shared is refused by stage name."""
    shared = stage_shares(SITES, SHAPES, 7, seed=5)
    with pytest.raises(SecAggError, match="advertise call at stage masked_input"):
        shared.collector.close_advertise()


def test_too_few_advertisements_fail_the_round() -> None:
    """Six advertisements for threshold 7 fail at the first stage, by count."""
    context = RoundContext("run-1", 3, tuple(SITES), 7)
    rng = random.Random(7)
    collector = Collector(context, SHAPES)
    for pid in SITES[:6]:
        collector.receive_advertisement(Party(context, pid, rng.randbytes).advertise())
    with pytest.raises(SecAggError, match="only 6 advertisements, threshold 7"):
        collector.close_advertise()
    with pytest.raises(SecAggError, match="round failed: only 6 advertisements"):
        collector.receive_advertisement(
            Party(context, SITES[7], rng.randbytes).advertise()
        )


def test_too_few_key_shares_fail_the_round() -> None:
    """Six parties sharing keys for threshold 7 fail at the second stage."""
    context = RoundContext("run-1", 3, tuple(SITES), 7)
    rng = random.Random(8)
    parties = [Party(context, p, rng.randbytes) for p in SITES]
    collector = Collector(context, SHAPES)
    for party in parties:
        collector.receive_advertisement(party.advertise())
    roster = collector.close_advertise()
    for party in parties[:6]:
        collector.receive_shares(party.party_id, party.share_keys(roster))
    with pytest.raises(SecAggError, match="only 6 parties shared keys, threshold 7"):
        collector.close_share_keys()


@pytest.mark.parametrize("sender", [["site-00"], None, 3])
def test_non_string_senders_are_rejected(sender: object) -> None:
    """A sender id that is not a string is refused before any lookup."""
    shared = stage_shares(SITES, SHAPES, 7, seed=9)
    with pytest.raises(SecAggError, match="bad sender"):
        shared.collector.receive_masked_input(sender, _good())  # type: ignore
