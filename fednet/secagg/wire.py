"""The wire messages of a secure-aggregation round (text frames; docs/protocol.md).

Keys, ciphertexts and share values travel as lowercase hex strings of a fixed
length, checked before anything is decoded. The masked input itself travels
as a ``fit_result`` whose arrays are the uint32 ring elements read as int32.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Union

from fednet import fields
from fednet.secagg.context import CIPHERTEXT_BYTES, KEY_BYTES, MAX_ID_CHARS
from fednet.secagg.prg import CHACHA20, PRGS
from fednet.secagg.shamir import Y_BYTES
from fednet.secagg.signing import MAX_CERT_BYTES, MAX_SIGNATURE_BYTES

MAX_PARTIES = 1000
"""Most sites in one secure round: the largest list stays under 1 MiB of text."""
MAX_SIGNED_PARTIES = 200
"""Most sites in one signed round: a roster of certificates stays under 1 MiB."""

_ROUND: fields.Fields = {"run_id": fields.INT, "server_round": fields.INT}
_HEX = frozenset("0123456789abcdef")


def hex_field(nbytes: int) -> fields.Convert:
    """Return a converter accepting exactly ``nbytes`` bytes as lowercase hex."""

    def convert(value: Any) -> str:
        if (
            not isinstance(value, str)
            or len(value) != 2 * nbytes
            or not _HEX.issuperset(value)
        ):
            raise ValueError(f"must be {nbytes} bytes as lowercase hex")
        return value

    return convert


def hex_bytes_field(max_bytes: int) -> fields.Convert:
    """Return a converter accepting 1 to ``max_bytes`` bytes as lowercase hex."""

    def convert(value: Any) -> str:
        if (
            not isinstance(value, str)
            or not 0 < len(value) <= 2 * max_bytes
            or len(value) % 2
            or not _HEX.issuperset(value)
        ):
            raise ValueError(f"must be 1 to {max_bytes} bytes as lowercase hex")
        return value

    return convert


def tuples_field(
    *converters: fields.Convert, most: int = MAX_PARTIES
) -> fields.Convert:
    """Return :func:`fednet.fields.tuples_field` with at most MAX_PARTIES rows."""
    return fields.tuples_field(*converters, most=most)


def _prg(value: Any) -> str:
    if value not in PRGS:
        raise ValueError(f"must be one of {', '.join(PRGS)}")
    return str(value)


PARTY = fields.str_field(MAX_ID_CHARS)
PARTIES = fields.str_tuple_field(MAX_PARTIES, MAX_ID_CHARS)
KEY = hex_field(KEY_BYTES)
SIGNATURE = hex_bytes_field(MAX_SIGNATURE_BYTES)
CERTIFICATE = hex_bytes_field(MAX_CERT_BYTES)
Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class SecaggSetup:
    """Coordinator to each selected site, before ``fit``: this round is secure.

    With distributed DP, ``dp_clip_norm`` (> 0) bounds the L2 norm of a site's
    delta and ``dp_noise_multiplier`` sets its noise share; 0 means no DP.
    ``prg`` names the masks' keystream; left out when ChaCha20, so sites of
    earlier releases (which know no other, nor the field) still parse it.
    """

    type: ClassVar[str] = "secagg_setup"
    run_id: int
    server_round: int
    parties: tuple[str, ...]
    threshold: int
    clip: float
    dp_clip_norm: float = 0.0
    dp_noise_multiplier: float = 0.0
    prg: str = CHACHA20

    FIELDS: ClassVar[fields.Fields] = {
        **_ROUND,
        "parties": PARTIES,
        "threshold": fields.int_field(2, MAX_PARTIES),
        "clip": fields.float_field(positive=True),
        "dp_clip_norm": fields.float_field(),
        "dp_noise_multiplier": fields.float_field(),
        "prg": _prg,
    }
    OMIT_DEFAULTS: ClassVar[tuple[str, ...]] = ("prg",)


@dataclass(frozen=True)
class SecaggAdvertise:
    """Site to coordinator, once trained: its two X25519 public keys."""

    type: ClassVar[str] = "secagg_advertise"
    run_id: int
    server_round: int
    c_public: str
    s_public: str

    FIELDS: ClassVar[fields.Fields] = {**_ROUND, "c_public": KEY, "s_public": KEY}


@dataclass(frozen=True)
class SecaggRoster:
    """Coordinator to each advertiser: every (party, c_public, s_public), the cap.

    ``weight_cap`` is the largest ``num_examples`` the advertisers declared at
    hello: each site scales its delta by ``num_examples / weight_cap``.
    """

    type: ClassVar[str] = "secagg_roster"
    run_id: int
    server_round: int
    advertisements: tuple[tuple[str, str, str], ...]
    weight_cap: int

    FIELDS: ClassVar[fields.Fields] = {
        **_ROUND,
        "advertisements": tuples_field(PARTY, KEY, KEY),
        "weight_cap": fields.int_field(1, fields.MAX_EXAMPLES),
    }


@dataclass(frozen=True)
class SecaggShares:
    """Sealed share pairs: (receiver, ciphertext) from a site, (sender, ...) to one."""

    type: ClassVar[str] = "secagg_shares"
    run_id: int
    server_round: int
    shares: Pairs

    FIELDS: ClassVar[fields.Fields] = {
        **_ROUND,
        "shares": tuples_field(PARTY, hex_field(CIPHERTEXT_BYTES)),
    }


@dataclass(frozen=True)
class SecaggUnmask:
    """Coordinator to each survivor: who dropped out and whose input is in."""

    type: ClassVar[str] = "secagg_unmask"
    run_id: int
    server_round: int
    dropped: tuple[str, ...]
    survivors: tuple[str, ...]

    FIELDS: ClassVar[fields.Fields] = {
        **_ROUND,
        "dropped": PARTIES,
        "survivors": PARTIES,
    }


@dataclass(frozen=True)
class SecaggUnmaskResult:
    """Survivor to coordinator: (owner, share) of s keys and of self-mask seeds."""

    type: ClassVar[str] = "secagg_unmask_result"
    run_id: int
    server_round: int
    s_shares: Pairs
    b_shares: Pairs

    FIELDS: ClassVar[fields.Fields] = {
        **_ROUND,
        "s_shares": tuples_field(PARTY, hex_field(Y_BYTES)),
        "b_shares": tuples_field(PARTY, hex_field(Y_BYTES)),
    }


@dataclass(frozen=True)
class SecaggSignedSetup(SecaggSetup):
    """:class:`SecaggSetup` of a signed round, for ``secagg-signed`` sites only."""

    type: ClassVar[str] = "secagg_setup_signed"


@dataclass(frozen=True)
class SecaggSignedAdvertise:
    """:class:`SecaggAdvertise` with its ECDSA signature and the site's DER cert."""

    type: ClassVar[str] = "secagg_advertise_signed"
    run_id: int
    server_round: int
    c_public: str
    s_public: str
    signature: str
    certificate: str

    FIELDS: ClassVar[fields.Fields] = {
        **_ROUND, "c_public": KEY, "s_public": KEY,
        "signature": SIGNATURE, "certificate": CERTIFICATE,
    }


@dataclass(frozen=True)
class SecaggSignedRoster:
    """:class:`SecaggRoster` whose rows add (signature, certificate)."""

    type: ClassVar[str] = "secagg_roster_signed"
    run_id: int
    server_round: int
    advertisements: tuple[tuple[str, str, str, str, str], ...]
    weight_cap: int

    FIELDS: ClassVar[fields.Fields] = {
        **_ROUND,
        "advertisements": tuples_field(
            PARTY, KEY, KEY, SIGNATURE, CERTIFICATE, most=MAX_SIGNED_PARTIES
        ),
        "weight_cap": fields.int_field(1, fields.MAX_EXAMPLES),
    }


@dataclass(frozen=True)
class SecaggConsistency:
    """Coordinator to each survivor of a signed round: sign these sets."""

    type: ClassVar[str] = "secagg_consistency"
    run_id: int
    server_round: int
    dropped: tuple[str, ...]
    survivors: tuple[str, ...]

    FIELDS: ClassVar[fields.Fields] = SecaggUnmask.FIELDS


@dataclass(frozen=True)
class SecaggConsistencySignature:
    """Survivor to coordinator: its signature over the sets it was told."""

    type: ClassVar[str] = "secagg_consistency_signature"
    run_id: int
    server_round: int
    signature: str

    FIELDS: ClassVar[fields.Fields] = {**_ROUND, "signature": SIGNATURE}


@dataclass(frozen=True)
class SecaggSignedUnmask:
    """:class:`SecaggUnmask` with t or more survivors' (signer, signature)."""

    type: ClassVar[str] = "secagg_unmask_signed"
    run_id: int
    server_round: int
    dropped: tuple[str, ...]
    survivors: tuple[str, ...]
    signatures: Pairs

    FIELDS: ClassVar[fields.Fields] = {
        **_ROUND,
        "dropped": PARTIES,
        "survivors": PARTIES,
        "signatures": tuples_field(PARTY, SIGNATURE),
    }


SecaggMessage = Union[
    SecaggSetup, SecaggAdvertise, SecaggRoster, SecaggShares, SecaggUnmask,
    SecaggUnmaskResult, SecaggSignedSetup, SecaggSignedAdvertise,
    SecaggSignedRoster, SecaggConsistency, SecaggConsistencySignature,
    SecaggSignedUnmask,
]
SecaggInput = Union[
    SecaggAdvertise, SecaggShares, SecaggUnmaskResult,
    SecaggSignedAdvertise, SecaggConsistencySignature,
]
"""What a site sends in a secure round besides its masked ``fit_result``."""
SECAGG_INPUTS = (
    SecaggAdvertise, SecaggShares, SecaggUnmaskResult,
    SecaggSignedAdvertise, SecaggConsistencySignature,
)
