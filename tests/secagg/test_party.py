"""The client state object refuses what could leak its input or break the round."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest

from fednet.secagg.context import (
    Advertisement,
    EncryptedShares,
    RoundContext,
    UnmaskRequest,
)
from fednet.secagg.errors import SecAggError
from fednet.secagg.party import Party
from tests.secagg.harness import make_updates, stage_round, stage_shares

SITES = [f"site-{i:02d}" for i in range(10)]
SHAPES: list[tuple[int, ...]] = [(5,), (5, 1)]


def test_party_refuses_both_shares_of_one_peer_in_one_request() -> None:
    """A request naming a party both dropped and surviving is refused."""
    staged = stage_round(make_updates(10, 10), 7, drop_before_input=SITES[:1])
    request = UnmaskRequest((SITES[0], SITES[1]), staged.request.survivors)
    with pytest.raises(SecAggError, match="refusing to reveal both shares of site-01"):
        staged.parties[SITES[2]].unmask(request)


def test_party_refuses_a_second_request_after_revealing() -> None:
    """After revealing b-shares of site-01, a request for its s-share is refused."""
    staged = stage_round(make_updates(10, 10), 7, drop_before_input=SITES[:1])
    party = staged.parties[SITES[2]]
    response = party.unmask(staged.request)
    assert SITES[1] in [owner for owner, _ in response.b_shares]
    survivors = tuple(p for p in staged.request.survivors if p != SITES[1])
    with pytest.raises(SecAggError, match="unmask called at stage done"):
        party.unmask(UnmaskRequest((SITES[0], SITES[1]), survivors))


def test_party_refuses_a_request_that_hides_a_party() -> None:
    """dropped and survivors must cover exactly the parties that shared keys."""
    staged = stage_round(make_updates(10, 10), 7)
    request = UnmaskRequest((), staged.request.survivors[:-1])
    with pytest.raises(SecAggError, match="must be the parties that shared"):
        staged.parties[SITES[0]].unmask(request)


def test_party_refuses_a_request_that_does_not_name_it() -> None:
    """A party told it dropped out reveals nothing."""
    staged = stage_round(make_updates(10, 10), 7)
    request = UnmaskRequest((SITES[0],), staged.request.survivors[1:])
    with pytest.raises(SecAggError, match="site-00 is not named a survivor"):
        staged.parties[SITES[0]].unmask(request)


def test_tampered_ciphertext_is_rejected() -> None:
    """One flipped bit in a routed share pair fails authentication."""
    shared = stage_shares(SITES, SHAPES, 7, seed=1)
    routed = list(shared.routed[SITES[0]])
    bad = bytearray(routed[3].ciphertext)
    bad[40] ^= 1
    routed[3] = dataclasses.replace(routed[3], ciphertext=bytes(bad))
    update = make_updates(1, 10)["site-00"]
    with pytest.raises(SecAggError, match="shares from site-04 failed authentication"):
        shared.parties[SITES[0]].masked_input(update, routed)


def test_shares_rerouted_to_another_party_are_rejected() -> None:
    """A ciphertext sealed for site-01, relabelled for site-00, fails to open."""
    shared = stage_shares(SITES, SHAPES, 7, seed=2)
    routed = list(shared.routed[SITES[0]])
    for_other = next(m for m in shared.routed[SITES[1]] if m.sender == SITES[3])
    index = next(i for i, m in enumerate(routed) if m.sender == SITES[3])
    routed[index] = dataclasses.replace(for_other, receiver=SITES[0])
    update = make_updates(1, 10)["site-00"]
    with pytest.raises(SecAggError, match="shares from site-03 failed authentication"):
        shared.parties[SITES[0]].masked_input(update, routed)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda ms: ms + [ms[0]], "share messages for"),
        (lambda ms: ms[:-1] + [ms[0]], "duplicate shares from"),
        (lambda ms: ms[:5], "6 parties shared, threshold 7"),
        (lambda ms: [dataclasses.replace(ms[0], receiver="site-05")], "addressed"),
        (lambda ms: [dataclasses.replace(ms[0], ciphertext=b"x")], "must be 160"),
        (lambda ms: [EncryptedShares("nobody", "site-00", b"")], "unknown party"),
    ],
)
def test_malformed_share_messages_are_rejected(edit: object, message: str) -> None:
    """Extra, duplicate, too few, misaddressed, short or foreign messages fail."""
    shared = stage_shares(SITES, SHAPES, 7, seed=3)
    routed = list(shared.routed[SITES[0]])
    update = make_updates(1, 10)["site-00"]
    with pytest.raises(SecAggError, match=message):
        shared.parties[SITES[0]].masked_input(update, edit(routed))  # type: ignore


def _roster(seed: int = 4) -> tuple[Party, list[Advertisement]]:
    context = RoundContext("run-1", 3, tuple(SITES), 7)
    rng = random.Random(seed)
    parties = [Party(context, p, rng.randbytes) for p in SITES]
    return parties[0], [p.advertise() for p in parties]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda ads: ads[1:], "own advertisement of site-00 is wrong"),
        (lambda ads: ads[:6], "6 parties advertised, threshold 7"),
        (lambda ads: ads[:-1] + [ads[1]], "duplicate advertisement from site-01"),
        (
            lambda ads: ads[:-1] + [dataclasses.replace(ads[-1], c_public=b"k")],
            "c_public of site-09 must be 32 bytes",
        ),
        (
            lambda ads: ads[:-1]
            + [dataclasses.replace(ads[-1], s_public=ads[1].s_public)],
            "public keys repeat",
        ),
        (lambda ads: "nope", "advertisements must be a list"),
    ],
)
def test_bad_rosters_are_rejected(edit: object, message: str) -> None:
    """A roster without us, too short, repeating or with bad keys is refused."""
    party, ads = _roster()
    with pytest.raises(SecAggError, match=message):
        party.share_keys(edit(ads))  # type: ignore[operator]


def test_low_order_public_key_is_rejected() -> None:
    """An all-zero X25519 key (a low-order point) is refused by name."""
    party, ads = _roster(5)
    ads[1] = dataclasses.replace(ads[1], c_public=bytes(32))
    with pytest.raises(SecAggError, match="bad public key from site-01"):
        party.share_keys(ads)


def test_stages_must_come_in_order() -> None:
    """Masking before sharing keys, or advertising twice, is refused."""
    party, ads = _roster(6)
    with pytest.raises(SecAggError, match="masked_input called at stage share_keys"):
        party.masked_input([np.zeros(3, np.uint32)], [])
    with pytest.raises(SecAggError, match="advertise called at stage"):
        party.advertise()


@pytest.mark.parametrize(
    ("parties", "threshold", "message"),
    [
        (("a", "b", "c", "d"), 2, "threshold must be in"),
        (("a", "b", "c"), 4, "threshold must be in"),
        (("b", "a", "c"), 2, "distinct and sorted"),
        (("a", "a", "c"), 2, "distinct and sorted"),
        (("a",), 1, "2 to 65536"),
        (("a", ""), 2, "bad party id"),
    ],
)
def test_round_context_is_validated(
    parties: tuple[str, ...], threshold: int, message: str
) -> None:
    """n/2 < t <= n, sorted distinct non-empty ids, at least two."""
    with pytest.raises(SecAggError, match=message):
        RoundContext("run", 1, parties, threshold)


def test_masking_in_place_equals_masking_a_copy() -> None:
    """mask_in_place on the arrays end to end gives masked_input's arrays."""
    updates = make_updates(4, 10)
    copies = stage_shares(updates, SHAPES, 3, seed=7)
    in_place = stage_shares(updates, SHAPES, 3, seed=7)
    for pid, update in updates.items():
        masked = copies.parties[pid].masked_input(update, copies.routed[pid])
        flat = np.concatenate([a.ravel() for a in update])
        in_place.parties[pid].mask_in_place(flat, in_place.routed[pid])
        np.testing.assert_array_equal(
            flat, np.concatenate([a.ravel() for a in masked])
        )


def test_mask_in_place_refuses_a_shaped_array_before_its_stage_moves() -> None:
    """A 2-D or non-uint32 update is refused, and the party can still mask."""
    updates = make_updates(3, 10)
    shared = stage_shares(updates, SHAPES, 2, seed=1)
    party = shared.parties["site-00"]
    for bad in (np.zeros((2, 5), np.uint32), np.zeros(10, np.int32)):
        with pytest.raises(SecAggError, match="flat uint32"):
            party.mask_in_place(bad, shared.routed["site-00"])
    party.mask_in_place(np.zeros(10, np.uint32), shared.routed["site-00"])
