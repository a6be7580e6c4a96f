"""Signed advertisements and the consistency check (a malicious coordinator)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

import numpy as np
import pytest

from fednet.secagg.collector import Collector
from fednet.secagg.context import Advertisement, RoundContext
from fednet.secagg.errors import SecAggError
from fednet.secagg.party import Party
from fednet.secagg.signed import (
    ConsistencyTally,
    SignedAdvertisement,
    advertisement_key,
    sign_advertisement,
    verify_consistency,
    verify_roster,
)
from fednet.secagg.signing import MAX_CERT_BYTES, consistency_bytes
from tests.secagg.harness import make_updates, ring_sum
from tests.secagg.pkihelp import NOW, identity

SITES = [f"site-{i:02d}" for i in range(5)]
CONTEXT = RoundContext("7", 3, tuple(SITES), 3)
CAS = identity(SITES[0]).cas


def _rows(context: RoundContext = CONTEXT) -> list[SignedAdvertisement]:
    rng = random.Random(0)
    return [
        sign_advertisement(identity(p), context, Party(context, p, rng.randbytes)
                           .advertise())
        for p in context.parties
    ]


def _refused(rows: list[SignedAdvertisement], match: str, **kw: object) -> None:
    now = kw.get("now", NOW)
    with pytest.raises(SecAggError, match=match):
        verify_roster(CONTEXT, rows, CAS, now)  # type: ignore[arg-type]


def test_a_signed_roster_verifies_and_gives_each_certified_key() -> None:
    rows = _rows()
    keys = verify_roster(CONTEXT, rows, CAS, NOW)
    assert sorted(keys) == SITES
    assert keys["site-01"] == advertisement_key(CONTEXT, rows[1])


def test_a_roster_of_an_aes_round_verifies_in_that_round() -> None:
    """The PRG is signed with the round: an AES-CTR round verifies as itself."""
    aes = RoundContext("7", 3, tuple(SITES), 3, "aes128-ctr")
    assert sorted(verify_roster(aes, _rows(aes), CAS, NOW)) == SITES


def test_a_substituted_key_is_refused() -> None:
    rows = _rows()
    adv = rows[2].advertisement
    forged = dataclasses.replace(adv, s_public=bytes(range(32)))
    rows[2] = dataclasses.replace(rows[2], advertisement=forged)
    _refused(rows, "advertisement of site-02: signature does not verify")
    with pytest.raises(SecAggError, match="does not verify"):
        advertisement_key(CONTEXT, rows[2])  # the coordinator's own check too


@pytest.mark.parametrize(
    "other",
    [
        RoundContext("7", 3, tuple(SITES[:3]), 2),  # a smaller world
        RoundContext("7", 3, tuple(SITES), 4),  # another threshold
        RoundContext("7", 3, tuple(SITES), 3, "aes128-ctr"),  # another PRG
    ],
)
def test_a_peer_shown_another_round_does_not_verify(other: RoundContext) -> None:
    """A coordinator that shows sites different parties or t is caught."""
    rows = _rows()
    peer = SITES[1]
    adv = Party(other, peer, random.Random(1).randbytes).advertise()
    rows[1] = sign_advertisement(identity(peer), other, adv)
    _refused(rows, "advertisement of site-01: signature does not verify")


def test_a_certificate_of_another_name_is_refused() -> None:
    """site-01's row signed by site-00, with site-00's certificate."""
    rows = _rows()
    adv = dataclasses.replace(rows[0].advertisement, party_id="site-01")
    rows[1] = sign_advertisement(identity("site-00"), CONTEXT, adv)
    _refused(rows, "certificate of site-01: issued to another name")


def test_a_certificate_from_another_ca_is_refused() -> None:
    rows = _rows()
    rows[3] = sign_advertisement(identity("site-03", "rogue CA"), CONTEXT,
                                 rows[3].advertisement)
    _refused(rows, "certificate of site-03: not issued by the CA")
    # ... though it is well signed: the coordinator, without the CA, accepts it
    advertisement_key(CONTEXT, rows[3])


def test_an_expired_certificate_is_refused() -> None:
    later = NOW + dt.timedelta(days=800)
    _refused(_rows(), "certificate of site-00: expired or not yet valid", now=later)


@pytest.mark.parametrize(
    ("cert", "match"),
    [
        (b"\x30\x03junk", "certificate of site-04: malformed"),
        (b"", "certificate of site-04: not 1 to"),
        (b"0" * (MAX_CERT_BYTES + 1), "certificate of site-04: not 1 to"),
    ],
)
def test_a_malformed_or_oversized_certificate_is_refused(
    cert: bytes, match: str
) -> None:
    rows = _rows()
    rows[4] = dataclasses.replace(rows[4], certificate=cert)
    _refused(rows, match)


@pytest.mark.parametrize(
    ("signature", "match"),
    [
        (b"\x01" * 73, "signature not 1 to 72 bytes"),
        (b"", "signature not 1 to 72 bytes"),
        (b"\x30\x06\x02\x01\x01\x02\x01\x01", "signature does not verify"),
        (b"garbage", "signature does not verify"),
    ],
)
def test_a_malformed_or_oversized_signature_is_refused(
    signature: bytes, match: str
) -> None:
    rows = _rows()
    rows[1] = dataclasses.replace(rows[1], signature=signature)
    _refused(rows, f"advertisement of site-01: {match}")


def test_a_signature_over_another_round_is_refused() -> None:
    """A replay of round 2's signed advertisement in round 3."""
    earlier = dataclasses.replace(CONTEXT, server_round=2)
    rows = _rows()
    rows[0] = _rows(earlier)[0]
    _refused(rows, "advertisement of site-00: signature does not verify")


def test_no_ca_file_means_nothing_is_verified() -> None:
    with pytest.raises(SecAggError, match="no CA"):
        verify_roster(CONTEXT, _rows(), (), NOW)


# -- consistency ------------------------------------------------------------------

SURVIVORS = ("site-00", "site-01", "site-02", "site-04")
DROPPED = ("site-03",)
KEYS = verify_roster(CONTEXT, _rows(), CAS, NOW)
TOLD = (SURVIVORS, DROPPED)


def _sign(site: str, survivors: tuple[str, ...] = SURVIVORS,
          dropped: tuple[str, ...] = DROPPED) -> tuple[str, bytes]:
    return site, identity(site).sign(consistency_bytes(CONTEXT, survivors, dropped))


def test_t_signatures_over_the_same_sets_pass() -> None:
    signatures = tuple(_sign(s) for s in SURVIVORS[:3])
    verify_consistency(CONTEXT, KEYS, TOLD, TOLD, signatures)


@pytest.mark.parametrize(
    ("signatures", "match"),
    [
        ((_sign("site-00"), _sign("site-01")), "2 signatures, threshold 3"),
        ((_sign("site-00"), _sign("site-01"),
          _sign("site-02", ("site-00", "site-01", "site-02"), ("site-03", "site-04"))),
         "consistency of site-02: signature does not verify"),
        ((_sign("site-00"), _sign("site-01"), _sign("site-01")), "signed twice"),
        ((_sign("site-00"), _sign("site-01"), ("site-99", b"x")),
         "'site-99' is not a certified survivor"),
        ((_sign("site-00"), _sign("site-01"), _sign("site-03")),
         "'site-03' is not a certified survivor"),
    ],
    ids=["fewer-than-t", "other-sets", "duplicate", "not-in-round", "dropped"],
)
def test_a_bad_consistency_proof_is_refused(
    signatures: tuple[tuple[str, bytes], ...], match: str
) -> None:
    with pytest.raises(SecAggError, match=match):
        verify_consistency(CONTEXT, KEYS, TOLD, TOLD, signatures)


def test_an_unmask_request_over_other_sets_is_refused() -> None:
    """The coordinator tells this site one dropout set and asks with another."""
    signatures = tuple(_sign(s) for s in SURVIVORS)
    asked = (SURVIVORS[:3], ("site-03", "site-04"))
    with pytest.raises(SecAggError, match="other sets than were signed"):
        verify_consistency(CONTEXT, KEYS, TOLD, asked, signatures)


def test_the_coordinator_tally_drops_bad_signatures_and_needs_t() -> None:
    tally = ConsistencyTally(CONTEXT, KEYS, SURVIVORS, DROPPED)
    tally.receive(*_sign("site-00"))
    with pytest.raises(SecAggError, match="does not verify"):
        tally.receive("site-01", _sign("site-02")[1])
    with pytest.raises(SecAggError, match="unexpected"):
        tally.receive(*_sign("site-03"))
    with pytest.raises(SecAggError, match="unexpected"):
        tally.receive(*_sign("site-00"))
    tally.receive(*_sign("site-01"))
    with pytest.raises(SecAggError, match="only 2 consistency signatures"):
        tally.close()
    tally.receive(*_sign("site-04"))
    assert [s for s, _ in tally.close()] == ["site-00", "site-01", "site-04"]


# -- a whole signed round --------------------------------------------------------


def test_an_honest_signed_round_with_a_dropout_gives_the_exact_sum() -> None:
    """5 sites, t = 3, site-03 drops before its masked input: the sum of 4."""
    updates = make_updates(5, 301, seed=4)
    names = dict(zip(sorted(updates), SITES))
    updates = {names[k]: v for k, v in updates.items()}
    rng = random.Random(1)
    parties = {p: Party(CONTEXT, p, rng.randbytes) for p in SITES}
    collector = Collector(CONTEXT, [a.shape for a in updates[SITES[0]]])
    coordinator_keys = {}
    signed = {}
    for p, party in parties.items():
        signed[p] = sign_advertisement(identity(p), CONTEXT, party.advertise())
        coordinator_keys[p] = advertisement_key(CONTEXT, signed[p])
        collector.receive_advertisement(signed[p].advertisement)
    roster = [signed[a.party_id] for a in collector.close_advertise()]
    site_keys = {p: verify_roster(CONTEXT, roster, identity(p).cas, NOW)
                 for p in SITES}
    adverts: list[Advertisement] = [row.advertisement for row in roster]
    for p, party in parties.items():
        collector.receive_shares(p, party.share_keys(adverts))
    routed = collector.close_share_keys()
    for p, party in parties.items():
        if p != "site-03":
            masked = party.masked_input(updates[p], routed[p])
            collector.receive_masked_input(p, masked)
    request = collector.close_masked_input()
    assert (request.survivors, request.dropped) == TOLD
    tally = ConsistencyTally(CONTEXT, coordinator_keys, *TOLD)
    for p in request.survivors:
        tally.receive(*_sign(p, *TOLD))
    proof = tally.close()
    for p in request.survivors:
        verify_consistency(CONTEXT, site_keys[p], TOLD, TOLD, proof)
        collector.receive_unmask(parties[p].unmask(request))
    result = collector.result()

    expected = ring_sum([u for p, u in updates.items() if p != "site-03"])
    for got, want in zip(result, expected):
        np.testing.assert_array_equal(got, want)
