"""An in-memory driver for secure-aggregation rounds, shared by the tests."""

from __future__ import annotations

import random
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fednet.secagg.collector import Collector
from fednet.secagg.context import EncryptedShares, RoundContext, UnmaskRequest
from fednet.secagg.party import Party
from fednet.secagg.prg import CHACHA20

U32 = npt.NDArray[np.uint32]


@dataclass
class Staged:
    """A round driven up to the unmask request."""

    collector: Collector
    parties: dict[str, Party]
    request: UnmaskRequest


def make_updates(n: int, size: int, seed: int = 0) -> dict[str, list[U32]]:
    """Make n random quantised updates of two arrays, keyed site-00..."""
    rng = np.random.default_rng(seed)
    return {
        f"site-{i:02d}": [
            rng.integers(0, 2**28, size=(size // 2,), dtype=np.uint32),
            rng.integers(0, 2**28, size=(size - size // 2, 1), dtype=np.uint32),
        ]
        for i in range(n)
    }


def ring_sum(updates: Collection[list[U32]]) -> list[U32]:
    """Sum updates mod 2^32."""
    first = next(iter(updates))
    total = [np.zeros_like(a) for a in first]
    for update in updates:
        for acc, arr in zip(total, update):
            np.add(acc, arr, out=acc)
    return total


@dataclass
class Shared:
    """A round driven through the share-keys stage."""

    collector: Collector
    parties: dict[str, Party]
    routed: dict[str, list[EncryptedShares]]


def stage_shares(
    sites: Collection[str], shapes: list[tuple[int, ...]], threshold: int, seed: int,
    prg: str = CHACHA20,
) -> Shared:
    """Run advertise and share keys for every site; return the routed shares."""
    context = RoundContext("run-1", 3, tuple(sorted(sites)), threshold, prg)
    rng = random.Random(seed)
    parties = {p: Party(context, p, rng.randbytes) for p in context.parties}
    collector = Collector(context, shapes)
    for party in parties.values():
        collector.receive_advertisement(party.advertise())
    roster = collector.close_advertise()
    for pid, party in parties.items():
        collector.receive_shares(pid, party.share_keys(roster))
    return Shared(collector, parties, collector.close_share_keys())


def stage_round(
    updates: dict[str, list[U32]],
    threshold: int,
    *,
    drop_before_input: Collection[str] = (),
    seed: int = 0,
    prg: str = CHACHA20,
) -> Staged:
    """Run advertise, share keys and masked input; return the unmask request."""
    shapes = [a.shape for a in next(iter(updates.values()))]
    shared = stage_shares(updates, shapes, threshold, seed, prg)
    collector, parties = shared.collector, shared.parties
    for pid, party in parties.items():
        if pid not in drop_before_input:
            masked = party.masked_input(updates[pid], shared.routed[pid])
            collector.receive_masked_input(pid, masked)
    return Staged(collector, parties, collector.close_masked_input())


def finish_round(staged: Staged, drop_after_input: Collection[str] = ()) -> list[U32]:
    """Collect the unmask responses of the remaining survivors; return the sum."""
    for pid in staged.request.survivors:
        if pid not in drop_after_input:
            staged.collector.receive_unmask(staged.parties[pid].unmask(staged.request))
    return staged.collector.result()
