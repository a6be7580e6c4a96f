"""The client side of one secure-aggregation round, as a sans-I/O state object."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from fednet.secagg.context import (
    NONCE_BYTES,
    Advertisement,
    EncryptedShares,
    RoundContext,
    UnmaskRequest,
    UnmaskResponse,
    check_advertisement,
    check_encrypted,
    check_id_set,
)
from fednet.secagg.envelope import (
    agree,
    decrypt_shares,
    encrypt_shares,
    generate_key,
    public_bytes,
)
from fednet.secagg.errors import SecAggError
from fednet.secagg.prg import SEED_BYTES, add_masks, derive_mask_seed
from fednet.secagg.shamir import Y_BYTES, RandomBytes, draw_bytes, split, y_to_bytes

U32 = npt.NDArray[np.uint32]
_STAGES = ("advertise", "share_keys", "masked_input", "unmask", "done")


class Party:
    """Hold one client's keys, shares and seeds through the four stages.

    Call :meth:`advertise`, :meth:`share_keys`, :meth:`masked_input` and
    :meth:`unmask` once each, in that order; every other order raises.

    Args:
        context: the round, as agreed with the collector.
        party_id: this client's site id, one of ``context.parties``.
        rng_bytes: a CSPRNG like ``os.urandom`` (tests pass a seeded one).

    Raises:
        SecAggError: for an id not in the round.
    """

    def __init__(
        self, context: RoundContext, party_id: str, rng_bytes: RandomBytes
    ) -> None:
        self.context = context
        self.party_id = party_id
        self._index = context.index(party_id)
        self._rng = rng_bytes
        self._c_key = generate_key(rng_bytes)
        self._s_key = generate_key(rng_bytes)
        self._stage = 0
        self._peers: dict[str, Advertisement] = {}
        # owner -> (share of its s key, share of its b seed), ours included
        self._held: dict[str, tuple[bytes, bytes]] = {}
        self._b_seed = b""
        # peer -> X25519 secret of our c key and its c key, sealing both ways
        self._c_secrets: dict[str, bytes] = {}

    def advertise(self) -> Advertisement:
        """Stage 0: publish the c (encryption) and s (masking) public keys."""
        self._advance(0)
        return self._own_advertisement()

    def share_keys(
        self, advertisements: Sequence[Advertisement]
    ) -> list[EncryptedShares]:
        """Stage 1: share the s key and a fresh self-mask seed b, t of n.

        Args:
            advertisements: every advertisement the collector received
                (this party's own included).

        Returns:
            One sealed share pair per other advertised party.

        Raises:
            SecAggError: on a malformed, duplicate or foreign advertisement,
                a changed own key, repeated public keys or fewer than t parties.
        """
        self._advance(1)
        self._peers = self._check_roster(advertisements)
        ctx = self.context
        n, t = len(ctx.parties), ctx.threshold
        self._b_seed = draw_bytes(self._rng, SEED_BYTES)
        s_shares = split(self._s_key.private_bytes_raw(), t, n, self._rng)
        b_shares = split(self._b_seed, t, n, self._rng)
        sealed: list[EncryptedShares] = []
        for peer, adv in self._peers.items():
            x = ctx.index(peer)
            pair = y_to_bytes(s_shares[x - 1].y) + y_to_bytes(b_shares[x - 1].y)
            if peer == self.party_id:
                self._held[peer] = (pair[:Y_BYTES], pair[Y_BYTES:])
                continue
            secret = agree(self._c_key, adv.c_public, peer)
            self._c_secrets[peer] = secret
            nonce = draw_bytes(self._rng, NONCE_BYTES)
            data = encrypt_shares(secret, ctx, self.party_id, peer, pair, nonce)
            sealed.append(EncryptedShares(self.party_id, peer, data))
        return sealed

    def masked_input(
        self, update: Sequence[U32], shares: Sequence[EncryptedShares]
    ) -> list[U32]:
        """Stage 2: keep the shares sent to us and mask a copy of the update.

        Like :meth:`mask_in_place` on the update's arrays laid end to end.

        Args:
            update: the quantised update (uint32 arrays).
            shares: the sealed share pairs the collector routed to us.

        Returns:
            The masked update, same shapes as ``update``.

        Raises:
            SecAggError: as :meth:`mask_in_place`.
        """
        flat, shapes = _flatten(update)
        self.mask_in_place(flat, shares)
        return _unflatten(flat, shapes)

    def mask_in_place(self, flat: U32, shares: Sequence[EncryptedShares]) -> None:
        """Stage 2: keep the shares sent to us and mask the quantised update.

        y = x + PRG(b) + sum_{j > i} PRG(s_ij) - sum_{j < i} PRG(s_ij) mod 2^32,
        over the parties j that sent us shares, all masks in one pass.

        Args:
            flat: the quantised update, all arrays end to end (flat uint32),
                masked in place.
            shares: the sealed share pairs the collector routed to us.

        Raises:
            SecAggError: on a malformed update, a malformed, foreign, duplicate
                or tampered share message, or fewer than t parties left
                (``flat`` is then unchanged).
        """
        flat_u32 = isinstance(flat, np.ndarray) and flat.dtype == np.uint32
        if not flat_u32 or flat.ndim != 1:
            raise SecAggError("update must be a flat uint32 array")
        self._advance(2)
        self._open_shares(shares)
        ctx = self.context
        masks = [(self._b_seed, 1)]
        for peer in self._held:
            if peer == self.party_id:
                continue
            secret = agree(self._s_key, self._peers[peer].s_public, peer)
            seed = derive_mask_seed(
                secret,
                run_id=ctx.run_id,
                server_round=ctx.server_round,
                party_a=self.party_id,
                party_b=peer,
            )
            masks.append((seed, 1 if ctx.index(peer) > self._index else -1))
        add_masks(flat, masks, ctx.prg)

    def unmask(self, request: UnmaskRequest) -> UnmaskResponse:
        """Stage 3: reveal s-key shares of the dropped and b shares of survivors.

        Answers once: any later request is refused, as is a request naming a
        party both dropped and surviving (revealing both of its shares would
        unmask its input).

        Raises:
            SecAggError: on a refused or malformed request.
        """
        self._advance(3)
        if not isinstance(request, UnmaskRequest):
            raise SecAggError(f"expected an UnmaskRequest, got {type(request)}")
        dropped = check_id_set(self.context, request.dropped, "dropped")
        survivors = check_id_set(self.context, request.survivors, "survivors")
        both = dropped & survivors
        if both:
            raise SecAggError(f"refusing to reveal both shares of {min(both)}")
        if self.party_id not in survivors:
            raise SecAggError(f"{self.party_id} is not named a survivor")
        if dropped | survivors != set(self._held):
            raise SecAggError("dropped and survivors must be the parties that shared")
        if len(survivors) < self.context.threshold:
            raise SecAggError(
                f"{len(survivors)} survivors, threshold {self.context.threshold}"
            )
        return UnmaskResponse(
            self.party_id,
            tuple((p, self._held[p][0]) for p in sorted(dropped)),
            tuple((p, self._held[p][1]) for p in sorted(survivors)),
        )

    def _advance(self, stage: int) -> None:
        """Move past a stage, refusing any call out of order or repeated."""
        if self._stage != stage:
            raise SecAggError(
                f"{_STAGES[stage]} called at stage {_STAGES[self._stage]}"
            )
        self._stage = stage + 1

    def _check_roster(
        self, advertisements: Sequence[Advertisement]
    ) -> dict[str, Advertisement]:
        """Check the advertised roster and return it by party id."""
        if not isinstance(advertisements, (list, tuple)):
            raise SecAggError("advertisements must be a list")
        if len(advertisements) > len(self.context.parties):
            raise SecAggError(f"{len(advertisements)} advertisements for n parties")
        roster: dict[str, Advertisement] = {}
        for adv in advertisements:
            check_advertisement(self.context, adv)
            if adv.party_id in roster:
                raise SecAggError(f"duplicate advertisement from {adv.party_id}")
            roster[adv.party_id] = adv
        keys = [k for a in roster.values() for k in (a.c_public, a.s_public)]
        if len(set(keys)) != len(keys):
            raise SecAggError("advertised public keys repeat")
        if roster.get(self.party_id) != self._own_advertisement():
            raise SecAggError(f"own advertisement of {self.party_id} is wrong")
        if len(roster) < self.context.threshold:
            raise SecAggError(
                f"{len(roster)} parties advertised, threshold {self.context.threshold}"
            )
        return dict(sorted(roster.items()))

    def _own_advertisement(self) -> Advertisement:
        """Return this party's advertisement."""
        return Advertisement(
            self.party_id, public_bytes(self._c_key), public_bytes(self._s_key)
        )

    def _open_shares(self, messages: Sequence[EncryptedShares]) -> None:
        """Check and decrypt the share pairs routed to us, then keep them."""
        if not isinstance(messages, (list, tuple)):
            raise SecAggError("shares must be a list")
        if len(messages) >= len(self._peers):
            raise SecAggError(
                f"{len(messages)} share messages for {len(self._peers) - 1} peers"
            )
        senders: set[str] = set()
        for message in messages:
            check_encrypted(self.context, message)
            if message.receiver != self.party_id:
                raise SecAggError(f"shares addressed to {message.receiver}")
            if message.sender not in self._peers or message.sender == self.party_id:
                raise SecAggError(f"shares from unadvertised {message.sender}")
            if message.sender in senders:
                raise SecAggError(f"duplicate shares from {message.sender}")
            senders.add(message.sender)
        if len(senders) + 1 < self.context.threshold:
            raise SecAggError(
                f"{len(senders) + 1} parties shared, threshold {self.context.threshold}"
            )
        for message in messages:
            secret = self._c_secrets[message.sender]
            pair = decrypt_shares(
                secret, self.context, message.sender, self.party_id, message.ciphertext
            )
            self._held[message.sender] = (pair[:Y_BYTES], pair[Y_BYTES:])


def _flatten(update: Sequence[U32]) -> tuple[U32, list[tuple[int, ...]]]:
    """Copy uint32 arrays into one flat array; return it and the shapes."""
    if not isinstance(update, (list, tuple)):
        raise SecAggError("update must be a list of arrays")
    for index, arr in enumerate(update):
        if not isinstance(arr, np.ndarray) or arr.dtype != np.uint32:
            raise SecAggError(f"array {index}: expected a uint32 array")
    flat = np.zeros(sum(arr.size for arr in update), dtype=np.uint32)
    start = 0
    for arr in update:
        flat[start : start + arr.size] = arr.ravel()
        start += arr.size
    return flat, [arr.shape for arr in update]


def _unflatten(flat: U32, shapes: list[tuple[int, ...]]) -> list[U32]:
    """Split a flat array into views of the given shapes."""
    out: list[U32] = []
    start = 0
    for shape in shapes:
        size = int(np.prod(shape, dtype=np.int64))
        out.append(flat[start : start + size].reshape(shape))
        start += size
    return out
