"""The coordinator side of one secure-aggregation round, as a sans-I/O state object.

The collector routes sealed shares it cannot read, folds each masked input into
one running sum as it arrives (memory O(model), independent of n) and, once the
survivors reveal their shares, removes the masks that did not cancel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from fednet.secagg.context import (
    Advertisement,
    EncryptedShares,
    RoundContext,
    Shape,
    UnmaskRequest,
    UnmaskResponse,
    check_advertisement,
    check_encrypted,
    check_sender,
    check_shapes,
    shape_size,
)
from fednet.secagg.envelope import agree, public_bytes
from fednet.secagg.errors import SecAggError
from fednet.secagg.prg import add_masks, derive_mask_seed
from fednet.secagg.shamir import Share, combine, y_from_bytes

U32 = npt.NDArray[np.uint32]
_STAGES = ("advertise", "share_keys", "masked_input", "unmask", "done", "failed")


class Collector:
    """Drive one round on the coordinator: route, fold, unmask.

    Per stage, call ``receive_*`` for each message that arrives, then the
    stage's ``close_*`` (on completion or timeout). A stage left with fewer
    than t parties fails the round: the call raises and so does every later one.

    Args:
        context: the round.
        shapes: the shapes of the model's arrays (the masked inputs' shapes).

    Raises:
        SecAggError: on bad shapes.
    """

    def __init__(self, context: RoundContext, shapes: Sequence[Shape]) -> None:
        self.context = context
        self.shapes = check_shapes(shapes)
        self.failure = ""
        self._stage = 0
        self._adverts: dict[str, Advertisement] = {}
        self._sealed: dict[str, Sequence[EncryptedShares]] = {}
        self._sum = np.zeros(0, dtype=np.uint32)
        self._survivors: set[str] = set()
        self._s_shares: dict[str, list[Share]] = {}
        self._b_shares: dict[str, list[Share]] = {}
        self._responders: set[str] = set()

    @property
    def dropped(self) -> tuple[str, ...]:
        """Parties that shared keys but sent no masked input."""
        return tuple(sorted(set(self._sealed) - self._survivors))

    @property
    def survivors(self) -> tuple[str, ...]:
        """Parties whose masked input is in the sum."""
        return tuple(sorted(self._survivors))

    def receive_advertisement(self, adv: Advertisement) -> None:
        """Stage 0: record a party's public keys.

        Raises:
            SecAggError: on a malformed or repeated advertisement.
        """
        self._expect(0)
        check_advertisement(self.context, adv)
        if adv.party_id in self._adverts:
            raise SecAggError(f"duplicate advertisement from {adv.party_id}")
        self._adverts[adv.party_id] = adv

    def close_advertise(self) -> list[Advertisement]:
        """End stage 0 and return the advertisements to send to each of them.

        Raises:
            SecAggError: with fewer than t advertisements (the round fails).
        """
        self._expect(0)
        self._close(len(self._adverts), "advertisements")
        return [self._adverts[p] for p in sorted(self._adverts)]

    def receive_shares(self, sender: str, messages: Sequence[EncryptedShares]) -> None:
        """Stage 1: take a sender's sealed shares, one for every other party.

        Raises:
            SecAggError: on an unadvertised or repeated sender, or a malformed,
                misaddressed or missing message.
        """
        self._expect(1)
        check_sender(sender)
        if sender not in self._adverts or sender in self._sealed:
            raise SecAggError(f"unexpected shares from {sender!r:.80}")
        if not isinstance(messages, (list, tuple)):
            raise SecAggError("shares must be a list")
        if len(messages) != len(self._adverts) - 1:
            raise SecAggError(f"{len(messages)} share messages from {sender}")
        receivers: set[str] = set()
        for message in messages:
            check_encrypted(self.context, message)
            receiver = message.receiver
            if message.sender != sender:
                raise SecAggError(f"shares from {sender} claim {message.sender}")
            if receiver == sender or receiver not in self._adverts:
                raise SecAggError(f"shares from {sender} for {receiver}")
            if receiver in receivers:
                raise SecAggError(f"duplicate shares from {sender} for {receiver}")
            receivers.add(receiver)
        self._sealed[sender] = tuple(messages)

    def close_share_keys(self) -> dict[str, list[EncryptedShares]]:
        """End stage 1 and return, per party that shared, the shares sent to it.

        Raises:
            SecAggError: with fewer than t parties that shared (the round fails).
        """
        self._expect(1)
        self._close(len(self._sealed), "parties shared keys")
        routed: dict[str, list[EncryptedShares]] = {p: [] for p in self._sealed}
        for messages in self._sealed.values():
            for message in messages:
                if message.receiver in routed:
                    routed[message.receiver].append(message)
        self._sum = np.zeros(sum(shape_size(s) for s in self.shapes), dtype=np.uint32)
        return routed

    def receive_masked_input(self, sender: str, arrays: Sequence[U32]) -> None:
        """Stage 2: fold a masked input into the running sum (mod 2^32).

        Raises:
            SecAggError: on a sender that did not share or already sent, or
                arrays of another count, dtype or shape.
        """
        self._expect(2)
        check_sender(sender)
        if sender not in self._sealed or sender in self._survivors:
            raise SecAggError(f"unexpected masked input from {sender!r:.80}")
        if not isinstance(arrays, (list, tuple)) or len(arrays) != len(self.shapes):
            raise SecAggError(f"masked input from {sender}: wrong number of arrays")
        for index, (arr, shape) in enumerate(zip(arrays, self.shapes)):
            if not isinstance(arr, np.ndarray) or arr.dtype != np.uint32:
                raise SecAggError(f"masked input from {sender}: array {index} dtype")
            if arr.shape != shape:
                raise SecAggError(
                    f"masked input from {sender}: array {index} shape {arr.shape}"
                )
        start = 0
        for arr in arrays:
            part = self._sum[start : start + arr.size]
            np.add(part, arr.reshape(-1), out=part)
            start += arr.size
        self._survivors.add(sender)

    def close_masked_input(self) -> UnmaskRequest:
        """End stage 2 and return the request to send to every survivor.

        Raises:
            SecAggError: with fewer than t masked inputs (the round fails).
        """
        self._expect(2)
        self._close(len(self._survivors), "masked inputs")
        return UnmaskRequest(self.dropped, self.survivors)

    def receive_unmask(self, response: UnmaskResponse) -> None:
        """Stage 3: keep a survivor's shares for the dropped and the survivors.

        Raises:
            SecAggError: on a response from a non-survivor, a repeated one, or
                one whose owners or share values are not exactly as requested.
        """
        self._expect(3)
        if not isinstance(response, UnmaskResponse):
            raise SecAggError(f"expected an UnmaskResponse, got {type(response)}")
        sender = check_sender(response.sender)
        if sender not in self._survivors or sender in self._responders:
            raise SecAggError(f"unexpected unmask response from {sender!r:.80}")
        s_ys = _share_values(response.s_shares, self.dropped, sender)
        b_ys = _share_values(response.b_shares, self.survivors, sender)
        x = self.context.index(sender)
        for owner, y in zip(self.dropped, s_ys):
            self._s_shares.setdefault(owner, []).append(Share(x, y))
        for owner, y in zip(self.survivors, b_ys):
            self._b_shares.setdefault(owner, []).append(Share(x, y))
        self._responders.add(sender)

    def result(self) -> list[U32]:
        """End the round: remove the remaining masks and return the ring sum.

        Returns:
            The sum mod 2^32 of the survivors' quantised updates, in the
            model's shapes; decode it with ``dequantize(..., summands=
            len(collector.survivors))``.

        Raises:
            SecAggError: with fewer than t unmask responses (the round fails),
                or shares that do not reconstruct the advertised keys.
        """
        self._expect(3)
        self._close(len(self._responders), "unmask responses")
        t = self.context.threshold
        masks: list[tuple[bytes, int]] = []
        for dropped in self.dropped:
            masks += self._pair_masks(dropped, combine(self._s_shares[dropped], t))
        for survivor in self.survivors:
            masks.append((combine(self._b_shares[survivor], t), -1))
        add_masks(self._sum, masks, self.context.prg)
        self._stage = 4
        out: list[U32] = []
        start = 0
        for shape in self.shapes:
            out.append(self._sum[start : start + shape_size(shape)].reshape(shape))
            start += shape_size(shape)
        self._sum = np.zeros(0, dtype=np.uint32)  # the caller owns the sum now
        return out

    def _pair_masks(self, dropped: str, s_raw: bytes) -> list[tuple[bytes, int]]:
        """Return the (seed, sign) pairs that cancel a dropped party's pair masks."""
        key = X25519PrivateKey.from_private_bytes(s_raw)
        if public_bytes(key) != self._adverts[dropped].s_public:
            raise SecAggError(f"shares of {dropped} do not match its s key")
        ctx = self.context
        masks: list[tuple[bytes, int]] = []
        for survivor in self.survivors:
            secret = agree(key, self._adverts[survivor].s_public, survivor)
            seed = derive_mask_seed(
                secret,
                run_id=ctx.run_id,
                server_round=ctx.server_round,
                party_a=dropped,
                party_b=survivor,
            )
            # The survivor added +mask if the dropped party's index is higher.
            added = 1 if ctx.index(dropped) > ctx.index(survivor) else -1
            masks.append((seed, -added))
        return masks

    def _expect(self, stage: int) -> None:
        """Refuse a call made at another stage, or after the round failed."""
        if self.failure:
            raise SecAggError(f"round failed: {self.failure}")
        if self._stage != stage:
            raise SecAggError(
                f"{_STAGES[stage]} call at stage {_STAGES[self._stage]}"
            )

    def _close(self, count: int, what: str) -> None:
        """Advance a stage, or fail the round below the threshold."""
        threshold = self.context.threshold
        if count < threshold:
            self.failure = f"only {count} {what}, threshold {threshold}"
            self._stage = 5
            raise SecAggError(f"round failed: {self.failure}")
        self._stage += 1


def _share_values(
    pairs: tuple[tuple[str, bytes], ...], owners: tuple[str, ...], sender: str
) -> list[int]:
    """Check (owner, y) pairs name exactly the expected owners; return the ys."""
    if not isinstance(pairs, tuple) or len(pairs) != len(owners):
        raise SecAggError(f"unmask response from {sender}: wrong share count")
    ys: list[int] = []
    for pair, owner in zip(pairs, owners):
        if not isinstance(pair, tuple) or len(pair) != 2 or pair[0] != owner:
            raise SecAggError(f"unmask response from {sender}: expected {owner}")
        ys.append(y_from_bytes(pair[1]))
    return ys
