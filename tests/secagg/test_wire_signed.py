"""The signed round's messages: round trips, bounds checked before decoding."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fednet.exceptions import ProtocolError
from fednet.protocol import Message, parse, serialize
from fednet.secagg.signing import MAX_CERT_BYTES
from fednet.secagg.wire import (
    MAX_SIGNED_PARTIES,
    SecaggConsistency,
    SecaggConsistencySignature,
    SecaggSetup,
    SecaggSignedAdvertise,
    SecaggSignedRoster,
    SecaggSignedSetup,
    SecaggSignedUnmask,
)

KEY = "ab" * 32
SIG = "30" * 70
CERT = "0f" * 600
ROW = ["site-a", KEY, KEY, SIG, CERT]


def _text(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, "run_id": 1, "server_round": 2, **fields})


@pytest.mark.parametrize(
    "message",
    [
        SecaggSignedSetup(1, 2, ("a", "b"), 2, 1.0),
        SecaggSignedAdvertise(1, 2, KEY, KEY, SIG, CERT),
        SecaggSignedRoster(1, 2, (tuple(ROW),), 10),  # type: ignore[arg-type]
        SecaggConsistency(1, 2, ("c",), ("a", "b")),
        SecaggConsistencySignature(1, 2, SIG),
        SecaggSignedUnmask(1, 2, ("c",), ("a", "b"), (("a", SIG), ("b", SIG))),
    ],
    ids=lambda m: m.type,
)
def test_signed_messages_round_trip(message: Message) -> None:
    assert parse(serialize(message)) == message


def test_a_signed_setup_is_a_setup_of_its_own_type() -> None:
    """Old sites never get it: they would refuse its type, not misread it."""
    setup = parse(serialize(SecaggSignedSetup(1, 2, ("a", "b"), 2, 1.0)))
    assert isinstance(setup, SecaggSetup) and setup.type == "secagg_setup_signed"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("signature", "30" * 73),
        ("signature", ""),
        ("signature", "3"),
        ("signature", "ZZ" * 8),
        ("certificate", "0f" * (MAX_CERT_BYTES + 1)),
        ("certificate", ""),
        ("certificate", 12),
    ],
)
def test_signature_and_certificate_sizes_are_bounded(field: str, value: Any) -> None:
    fields = {"c_public": KEY, "s_public": KEY, "signature": SIG, "certificate": CERT}
    fields[field] = value
    with pytest.raises(ProtocolError, match=f"invalid {field}"):
        parse(_text("secagg_advertise_signed", **fields))


def test_a_signed_roster_holds_at_most_max_signed_parties() -> None:
    rows = [ROW] * (MAX_SIGNED_PARTIES + 1)
    with pytest.raises(ProtocolError, match="at most 200 entries"):
        parse(_text("secagg_roster_signed", advertisements=rows, weight_cap=1))


def test_the_largest_signed_roster_fits_a_text_frame() -> None:
    row = ["\u00e9" * 256, KEY, KEY, "30" * 72, "0f" * MAX_CERT_BYTES]
    rows: Any = (tuple(row),) * MAX_SIGNED_PARTIES
    roster = SecaggSignedRoster(1, 2, rows, 1)
    assert len(serialize(roster)) < 1 << 20


def test_an_unsigned_advertisement_refuses_signature_fields() -> None:
    """An old coordinator never receives them: it would refuse the fields."""
    with pytest.raises(ProtocolError, match="unknown fields"):
        parse(_text("secagg_advertise", c_public=KEY, s_public=KEY, signature=SIG))
