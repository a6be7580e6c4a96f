"""A site's side of secure-aggregation rounds on one connection (docs/privacy.md).

The coordinator's ``secagg_setup`` marks a round secure before its ``fit``:
the trained update then never leaves in the clear. The site keeps its delta
(the update minus the global model, each coordinate clipped to
``[-clip, clip]``), advertises keys, shares them, sends its masked input as a
``fit_result`` of int32 arrays, and finally reveals the shares it was asked for.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from fednet.client import signedsite
from fednet.client.encoding import dp_terms, encode_delta
from fednet.client.signedsite import SecaggPolicy, SignedRound
from fednet.protocol import Fit, FitResult
from fednet.secagg.context import Advertisement, EncryptedShares, RoundContext
from fednet.secagg.context import UnmaskRequest
from fednet.secagg.errors import SecAggError
from fednet.secagg.party import Party
from fednet.secagg.wire import (
    SecaggAdvertise,
    SecaggConsistency,
    SecaggConsistencySignature,
    SecaggRoster,
    SecaggSetup,
    SecaggShares,
    SecaggSignedAdvertise,
    SecaggSignedRoster,
    SecaggSignedSetup,
    SecaggSignedUnmask,
    SecaggUnmask,
    SecaggUnmaskResult,
)
from fednet.typing import NDArray, NDArrays

logger = logging.getLogger(__name__)

SecureStep = (
    SecaggRoster | SecaggShares | SecaggUnmask | SecaggSignedRoster
    | SecaggConsistency | SecaggSignedUnmask
)
"""A coordinator message a site answers with its next stage."""
SECURE_STEPS = (
    SecaggRoster, SecaggShares, SecaggUnmask, SecaggSignedRoster,
    SecaggConsistency, SecaggSignedUnmask,
)
MAX_ROUNDS_HELD = 2
"""Secure rounds a connection keeps state for (the current one, and a late one)."""


@dataclass
class _Round:
    party: Party
    clip: float
    # (trained, global) pairs of flat arrays, kept until the masked input
    pairs: list[tuple[NDArray, NDArray]] = field(default_factory=list)
    num_examples: int = 0
    weight_cap: int = 0
    shapes: list[tuple[int, ...]] = field(default_factory=list)
    dp: tuple[float, float] = (0.0, 0.0)  # distributed DP: (clip norm, z)
    signed: SignedRound | None = None  # a signed round's keys and signed sets


class SecureSite:
    """Hold the state of this site's secure rounds, keyed by (run, round).

    Args:
        name: the site's client id (its registered name), its party id.
        rng_bytes: a CSPRNG for keys, seeds and nonces (``os.urandom``).
        policy: whether it signs and verifies (signed rounds).
        release: gives a global model's receive buffer back to its pool (from
            the thread :meth:`step` runs in). With it, a secure round keeps the
            ``fit``'s global model itself, without a copy, and releases it once
            encoded; without it, it copies.
    """

    def __init__(
        self, name: str, rng_bytes: Callable[[int], bytes] = os.urandom,
        policy: SecaggPolicy = SecaggPolicy(),
        release: Callable[[NDArrays], None] | None = None,
    ) -> None:
        self.name = name
        self.policy = policy
        self._rng = rng_bytes
        self._release = release
        self._rounds: dict[tuple[int, int], _Round] = {}
        self._refused: set[tuple[int, int]] = set()
        # The masked input's buffer, reused round after round: a connection
        # sends a reply whole before it takes its next request, and a fresh
        # model-sized buffer costs a page fault every 4 KiB.
        self._out = np.empty(0, dtype=np.uint32)

    def setup(self, message: SecaggSetup) -> None:
        """Open a secure round; the next ``fit`` of it stays here.

        A round this site cannot join (not a party, a bad context) is logged
        and refused: its ``fit`` is answered with an error, never in the clear.
        """
        key = (message.run_id, message.server_round)
        refusal = self.policy.refusal(message)
        if refusal is not None:
            logger.warning("secure round %d refused: %s", message.server_round, refusal)
            self._refused.add(key)
            return
        try:
            context = RoundContext(
                str(message.run_id), message.server_round, message.parties,
                message.threshold, message.prg,
            )
            party = Party(context, self.name, self._rng)
        except SecAggError as e:
            logger.warning("secure round %d refused: %s", message.server_round, e)
            self._refused.add(key)
            return
        dp = (message.dp_clip_norm, message.dp_noise_multiplier)
        signed = SignedRound() if isinstance(message, SecaggSignedSetup) else None
        self._rounds[key] = _Round(party, message.clip, dp=dp, signed=signed)
        while len(self._rounds) > MAX_ROUNDS_HELD:
            del self._rounds[next(iter(self._rounds))]

    def after_fit(
        self, request: Fit, result: FitResult
    ) -> FitResult | SecaggAdvertise | SecaggSignedAdvertise:
        """Keep a secure round's trained update and return its advertisement.

        A round without ``secagg_setup`` returns ``result`` unchanged.
        """
        key = (request.run_id, request.server_round)
        if key in self._refused:
            self._refused.discard(key)
            raise SecAggError(f"refused secure round {request.server_round}")
        held = self._rounds.get(key)
        if held is None:
            return result
        if len(result.parameters) != len(request.parameters):
            raise SecAggError("the trained model has another number of arrays")
        # Without ``release`` the connection reuses the global model's buffer
        # once the fit is answered: copy it.
        held.pairs = [
            (np.ravel(new), np.ravel(old) if self._release else np.array(old).ravel())
            for new, old in zip(result.parameters, request.parameters)
        ]
        held.num_examples = result.num_examples
        held.shapes = [np.shape(p) for p in request.parameters]
        adv = held.party.advertise()
        if held.signed is not None:
            return signedsite.advertise(self.policy, held.party.context, adv)
        return SecaggAdvertise(
            request.run_id, request.server_round, adv.c_public.hex(), adv.s_public.hex()
        )

    def step(
        self, message: SecureStep
    ) -> SecaggShares | FitResult | SecaggUnmaskResult | SecaggConsistencySignature:
        """Answer a stage message of a held round.

        A signed round's check that fails drops the round: nothing more of it
        is ever revealed.

        Raises:
            SecAggError: for a round not held, or anything the stage refuses.
        """
        held = self._rounds.get((message.run_id, message.server_round))
        if held is None:
            raise SecAggError(f"no secure round {message.server_round} here")
        ids = (message.run_id, message.server_round)
        try:
            adverts = signedsite.check_step(
                self.policy, held.party.context, held.signed, message)
        except SecAggError as e:
            del self._rounds[ids]
            logger.warning("secure round %d: refusing to reveal anything: %s",
                           message.server_round, e)
            raise
        if isinstance(message, SecaggConsistency):
            assert held.signed is not None
            return signedsite.sign_sets(
                self.policy, held.party.context, held.signed, message)
        if isinstance(message, (SecaggRoster, SecaggSignedRoster)):
            adverts = adverts or [
                Advertisement(row[0], bytes.fromhex(row[1]), bytes.fromhex(row[2]))
                for row in message.advertisements
            ]
            held.weight_cap = message.weight_cap
            sealed = held.party.share_keys(adverts)
            return SecaggShares(*ids, tuple((m.receiver, m.ciphertext.hex())
                                            for m in sealed))
        if isinstance(message, SecaggShares):
            return FitResult(*ids, 0, {}, self._masked(held, message))
        del self._rounds[ids]
        response = held.party.unmask(UnmaskRequest(message.dropped, message.survivors))
        return SecaggUnmaskResult(
            *ids,
            tuple((o, y.hex()) for o, y in response.s_shares),
            tuple((o, y.hex()) for o, y in response.b_shares),
        )

    def _masked(self, held: _Round, message: SecaggShares) -> NDArrays:
        """Quantise the weighted delta, append the weight, mask: int32 arrays."""
        shares = [
            EncryptedShares(sender, self.name, bytes.fromhex(data))
            for sender, data in message.shares
        ]
        cap = held.weight_cap
        weight = min(held.num_examples, cap)
        parties = len(held.party.context.parties)
        # FedAvg weights: the sum of x_i * n_i / cap, and of n_i beside it.
        factor, noise = weight / cap, None
        if held.dp[0] > 0:
            factor, noise = dp_terms(held.pairs, *held.dp, held.party.context.threshold)
        # Every array end to end and the weight last, encoded and masked in place.
        size = sum(new.size for new, _ in held.pairs) + 1
        if self._out.size != size:
            self._out = np.empty(size, dtype=np.uint32)
        flat = self._out
        masked: NDArrays = []
        start = clipped = 0
        for (new, old), shape in zip(held.pairs, held.shapes):
            part = flat[start : start + new.size]
            clipped += encode_delta(
                new, old, held.clip, factor, parties, noise, out=part
            )[1]
            masked.append(part.view(np.int32).reshape(shape))
            start += new.size
        if clipped:
            logger.warning(
                "secure round %d: %d of %d changes clipped to secagg_clip %g",
                message.server_round, clipped, flat.size - 1, held.clip,
            )
        flat[-1] = weight
        masked.append(flat[-1:].view(np.int32))
        if self._release is not None:
            self._release([old for _, old in held.pairs])
        held.pairs = []
        held.party.mask_in_place(flat, shares)
        return masked


def exit_now(server_round: int) -> None:
    """End the process at once, as a site that crashed would (a test hook)."""
    logger.warning("secure round %d: masked input sent, exiting (--exit-after-masked)",
                   server_round)
    logging.shutdown()
    os._exit(3)
