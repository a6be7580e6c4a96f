"""The round context and the messages of one secure-aggregation round.

Wire sizes: an :class:`Advertisement` carries two 32-byte X25519 public keys;
an :class:`EncryptedShares` carries :data:`CIPHERTEXT_BYTES` bytes; an
:class:`UnmaskResponse` carries one 66-byte share value per named party.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from fednet.secagg.errors import SecAggError
from fednet.secagg.prg import CHACHA20, MAX_LENGTH, PRGS
from fednet.secagg.shamir import MAX_SHARES, Y_BYTES

Shape = tuple[int, ...]
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
# nonce || AES-GCM(s-key share y || self-mask seed share y) || tag
CIPHERTEXT_BYTES = NONCE_BYTES + 2 * Y_BYTES + TAG_BYTES
MAX_ID_CHARS = 256


@dataclass(frozen=True)
class RoundContext:
    """What every party of a round agrees on before it starts.

    Attributes:
        run_id: the run the round belongs to.
        server_round: the round number.
        parties: the invited site ids; index i + 1 belongs to ``parties[i]``.
        threshold: t, the fewest parties that must remain at every stage.
        prg: the keystream PRG of every mask (one of :data:`~fednet.secagg.prg.PRGS`).

    Raises:
        SecAggError: unless parties are distinct, sorted, non-empty strings,
            at least 2 of them, n/2 < threshold <= n, and the PRG is known.
    """

    run_id: str
    server_round: int
    parties: tuple[str, ...]
    threshold: int
    prg: str = CHACHA20

    def __post_init__(self) -> None:
        if not isinstance(self.run_id, str) or len(self.run_id) > MAX_ID_CHARS:
            raise SecAggError(f"bad run_id {self.run_id!r:.80}")
        if not _is_int(self.server_round) or self.server_round < 0:
            raise SecAggError(f"bad server_round {self.server_round!r}")
        parties = self.parties
        if not isinstance(parties, tuple) or not 2 <= len(parties) <= MAX_SHARES:
            raise SecAggError("parties must be a tuple of 2 to 65536 ids")
        for party in parties:
            _check_id(party)
        if list(parties) != sorted(set(parties)):
            raise SecAggError("parties must be distinct and sorted")
        # With t > n/2 no two disjoint groups of t parties exist, so a server
        # cannot collect s-shares and b-shares of one party from two groups
        # (Bonawitz et al. 2017, section 4).
        n = len(parties)
        if not _is_int(self.threshold) or not n // 2 < self.threshold <= n:
            raise SecAggError(
                f"threshold must be in ({n / 2}, {n}], got {self.threshold!r}"
            )
        if self.prg not in PRGS:
            raise SecAggError(f"unknown PRG {self.prg!r:.40}")

    def index(self, party_id: str) -> int:
        """Return the 1-based index of a party (its Shamir x).

        Raises:
            SecAggError: for an id that is not one of the round's parties.
        """
        if isinstance(party_id, str):
            pos = bisect.bisect_left(self.parties, party_id)
            if pos < len(self.parties) and self.parties[pos] == party_id:
                return pos + 1
        raise SecAggError(f"unknown party {party_id!r:.80}")


@dataclass(frozen=True)
class Advertisement:
    """Stage 0, party to all: the two X25519 public keys of a party."""

    party_id: str
    c_public: bytes
    s_public: bytes


@dataclass(frozen=True)
class EncryptedShares:
    """Stage 1, routed by the collector: a sender's shares for one receiver."""

    sender: str
    receiver: str
    ciphertext: bytes


@dataclass(frozen=True)
class UnmaskRequest:
    """Stage 3, collector to survivors: who dropped out and who remains."""

    dropped: tuple[str, ...]
    survivors: tuple[str, ...]


@dataclass(frozen=True)
class UnmaskResponse:
    """Stage 3, survivor to collector: (owner id, 66-byte share y) pairs.

    ``s_shares`` hold shares of the mask keys of dropped parties and
    ``b_shares`` shares of the self-mask seeds of survivors.
    """

    sender: str
    s_shares: tuple[tuple[str, bytes], ...]
    b_shares: tuple[tuple[str, bytes], ...]


def check_advertisement(context: RoundContext, adv: Advertisement) -> int:
    """Check an advertisement's types and sizes and return its party's index.

    Raises:
        SecAggError: on another type, an unknown party or a key not 32 bytes.
    """
    if not isinstance(adv, Advertisement):
        raise SecAggError(f"expected an Advertisement, got {type(adv).__name__}")
    index = context.index(adv.party_id)
    for name, key in (("c_public", adv.c_public), ("s_public", adv.s_public)):
        if not isinstance(key, bytes) or len(key) != KEY_BYTES:
            raise SecAggError(f"{name} of {adv.party_id} must be {KEY_BYTES} bytes")
    return index


def check_encrypted(context: RoundContext, message: EncryptedShares) -> None:
    """Check an EncryptedShares message's types, ids and ciphertext size.

    Raises:
        SecAggError: on another type, an unknown id or a wrong size.
    """
    if not isinstance(message, EncryptedShares):
        raise SecAggError(f"expected EncryptedShares, got {type(message).__name__}")
    context.index(message.sender)
    context.index(message.receiver)
    ciphertext = message.ciphertext
    if not isinstance(ciphertext, bytes) or len(ciphertext) != CIPHERTEXT_BYTES:
        raise SecAggError(
            f"ciphertext from {message.sender} must be {CIPHERTEXT_BYTES} bytes"
        )


def check_id_set(context: RoundContext, ids: tuple[str, ...], what: str) -> set[str]:
    """Check a tuple of distinct known party ids and return it as a set.

    Raises:
        SecAggError: on another type, an unknown id or a repeated id.
    """
    if not isinstance(ids, tuple) or len(ids) > len(context.parties):
        raise SecAggError(f"{what} must be a tuple of at most n ids")
    for party in ids:
        context.index(party)
    if len(set(ids)) != len(ids):
        raise SecAggError(f"{what} repeat an id")
    return set(ids)


def check_sender(sender: object) -> str:
    """Check that a transport-supplied sender id is a bounded string.

    Raises:
        SecAggError: on anything else.
    """
    if not isinstance(sender, str) or len(sender) > MAX_ID_CHARS:
        raise SecAggError(f"bad sender {sender!r:.80}")
    return sender


def check_shapes(shapes: Sequence[Shape]) -> tuple[Shape, ...]:
    """Check model shapes: tuples of non-negative ints, MAX_LENGTH in total.

    Raises:
        SecAggError: on anything else.
    """
    checked: list[Shape] = []
    for shape in shapes:
        if not isinstance(shape, tuple) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise SecAggError(f"bad shape {shape!r:.80}")
        checked.append(shape)
    if sum(shape_size(s) for s in checked) > MAX_LENGTH:
        raise SecAggError("model too large")
    return tuple(checked)


def shape_size(shape: Shape) -> int:
    """Return the number of elements of a shape."""
    size = 1
    for dim in shape:
        size *= dim
    return size


def _check_id(party: object) -> None:
    """Check one party id: a non-empty string of bounded length."""
    if not isinstance(party, str) or not 0 < len(party) <= MAX_ID_CHARS:
        raise SecAggError(f"bad party id {party!r:.80}")


def _is_int(value: object) -> bool:
    """Tell a real int from anything else (bool included)."""
    return isinstance(value, int) and not isinstance(value, bool)
