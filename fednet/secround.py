"""The coordinator's side of one secure-aggregation round, in wire messages.

Wraps :class:`fednet.secagg.collector.Collector`: turns the sites' messages
into its inputs, its outputs into messages, and the unmasked ring sum into
the round's FedAvg model (docs/privacy.md#secure-aggregation).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fednet.config import RunConfig
from fednet.secagg.collector import Collector
from fednet.secagg.context import (
    Advertisement,
    EncryptedShares,
    RoundContext,
    UnmaskRequest,
    UnmaskResponse,
)
from fednet.secagg.errors import SecAggError
from fednet.secagg.prg import CHACHA20
from fednet.secagg.quantize import dequantize, max_error
from fednet.secagg.rules import round_threshold
from fednet.secagg.wire import (
    MAX_SIGNED_PARTIES,
    SecaggAdvertise,
    SecaggConsistency,
    SecaggConsistencySignature,
    SecaggInput,
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
from fednet.secsigned import SignedStages
from fednet.typing import ClientId, NDArrays

CHUNK = 1 << 16
"""Elements decoded at a time: the float64 temporaries stay in cache."""
STAGES = ("advertise", "share_keys", "masked_input", "unmask")
SIGNED_STAGES = ("advertise", "share_keys", "masked_input", "consistency", "unmask")
"""A signed round's stages: the consistency check comes before unmasking."""
_INPUTS = {
    SecaggAdvertise: ("advertise", False),
    SecaggShares: ("share_keys", None),
    SecaggUnmaskResult: ("unmask", None),
    SecaggSignedAdvertise: ("advertise", True),
    SecaggConsistencySignature: ("consistency", True),
}


class SecureRound:
    """Route one round's stages and fold its masked inputs into one sum.

    Party ids are the sites' client ids, which are their registered names.

    Args:
        config: the run's configuration (threshold and clip range).
        run_id: the run.
        server_round: the round.
        selected: the sites invited to the round.
        parameters: the global model the sites train from.
        signed: run the signed variant (every selected site signs and can
            verify: docs/privacy.md); at most MAX_SIGNED_PARTIES sites.
        prg: the masks' keystream PRG (every selected site must know it).

    Raises:
        SecAggError: if the threshold exceeds the selected sites.
    """

    def __init__(
        self,
        config: RunConfig,
        run_id: int,
        server_round: int,
        selected: Sequence[ClientId],
        parameters: NDArrays,
        signed: bool = False,
        prg: str = CHACHA20,
    ) -> None:
        parties = tuple(sorted(selected))
        threshold = round_threshold(config.secagg_threshold, len(parties))
        if threshold > len(parties):
            raise SecAggError(
                f"threshold {threshold} exceeds the {len(parties)} sites of the round"
            )
        self.context = RoundContext(str(run_id), server_round, parties, threshold, prg)
        self.clip = config.secagg_clip
        distributed = config.dp == "distributed"
        self._dp = (
            (config.dp_clip_norm, config.dp_noise_multiplier) if distributed else (0, 0)
        )
        self.stage = STAGES[0]
        self._ids = (run_id, server_round)
        shapes = [tuple(p.shape) for p in parameters] + [(1,)]
        self.collector = Collector(self.context, shapes)
        self._declared: dict[str, int] = {}
        self.responders: set[str] = set()
        self.signed = signed and len(parties) <= MAX_SIGNED_PARTIES
        self._signed = SignedStages(self.context)
        self._request = UnmaskRequest((), ())

    @property
    def dropouts_recovered(self) -> int:
        """Return the sites whose masks were removed without their help.

        Those that shared keys but sent no masked input, and those whose
        masked input is in the sum but who did not answer the unmask request.
        """
        late = set(self.collector.survivors) - self.responders
        return len(self.collector.dropped) + len(late)

    def setup_message(self) -> SecaggSetup:
        """Return the message that opens the round at every selected site."""
        ctx = self.context
        kind = SecaggSignedSetup if self.signed else SecaggSetup
        clip_norm, multiplier = self._dp
        return kind(*self._ids, ctx.parties, ctx.threshold, self.clip, clip_norm,
                    multiplier, ctx.prg)

    def expects(self, message: SecaggInput) -> bool:
        """Return whether the message belongs to the current stage (and variant)."""
        stage, signed = _INPUTS.get(type(message), ("", None))
        return stage == self.stage and signed in (None, self.signed)

    def receive(self, party: ClientId, message: SecaggInput, declared: int) -> None:
        """Take a site's message of the current stage.

        Args:
            party: the sender's client id, from its connection (never the message).
            message: what it sent.
            declared: the ``num_examples`` it declared at hello.

        Raises:
            SecAggError: on a malformed, repeated or misplaced message.
        """
        if isinstance(message, SecaggAdvertise):
            keys = bytes.fromhex(message.c_public), bytes.fromhex(message.s_public)
            self.collector.receive_advertisement(Advertisement(party, *keys))
            self._declared[party] = max(1, declared)
        elif isinstance(message, SecaggSignedAdvertise):
            adv = self._signed.advertisement(party, message)
            self.collector.receive_advertisement(adv)
            self._signed.keep(party, message)
            self._declared[party] = max(1, declared)
        elif isinstance(message, SecaggConsistencySignature):
            self._signed.signature(party, message)
        elif isinstance(message, SecaggShares):
            sealed = [EncryptedShares(party, peer, bytes.fromhex(data))
                      for peer, data in message.shares]
            self.collector.receive_shares(party, sealed)
        else:
            s_shares = tuple((o, bytes.fromhex(y)) for o, y in message.s_shares)
            b_shares = tuple((o, bytes.fromhex(y)) for o, y in message.b_shares)
            self.collector.receive_unmask(UnmaskResponse(party, s_shares, b_shares))
            self.responders.add(party)

    def close_advertise(self) -> SecaggRoster | SecaggSignedRoster:
        """End stage 0: the roster for every advertiser (raises below t)."""
        adverts = self.collector.close_advertise()
        cap = max(self._declared.values())
        if cap * len(self.context.parties) >= 1 << 32:  # the weights' 32-bit sum
            raise SecAggError(f"num_examples up to {cap} overflow the weight sum")
        self.stage = STAGES[1]
        if self.signed:
            return self._signed.roster(self._ids, adverts, cap)
        rows = tuple((a.party_id, a.c_public.hex(), a.s_public.hex()) for a in adverts)
        return SecaggRoster(*self._ids, rows, cap)

    def close_share_keys(self) -> dict[ClientId, SecaggShares]:
        """End stage 1: per site that shared, the sealed shares sent to it."""
        routed = self.collector.close_share_keys()
        self.stage = STAGES[2]
        return {
            ClientId(party): SecaggShares(
                *self._ids, tuple((m.sender, m.ciphertext.hex()) for m in sealed)
            )
            for party, sealed in routed.items()
        }

    def masked_input(self, party: ClientId) -> MaskedInput:
        """Return the sink that folds one site's masked input into the sum."""
        return MaskedInput(self.collector, party)

    def close_masked_input(self) -> SecaggUnmask | SecaggConsistency:
        """End stage 2: the unmask request for every survivor (raises below t).

        A signed round asks the survivors to sign the sets first.
        """
        request = self.collector.close_masked_input()
        if self.signed:
            self._request, self.stage = request, "consistency"
            return self._signed.consistency(self._ids, request)
        self.stage = STAGES[3]
        return SecaggUnmask(*self._ids, request.dropped, request.survivors)

    def close_consistency(self) -> SecaggSignedUnmask:
        """End a signed round's consistency stage: the request for the signers.

        Raises:
            SecAggError: with fewer than t signatures (the round fails).
        """
        message = self._signed.unmask(self._ids, self._request)
        self.stage = STAGES[3]
        return message

    def result(
        self, parameters: NDArrays, denominator: float | None = None
    ) -> SecureSum:
        """End the round: unmask the sum and return it as the round's aggregate.

        ``denominator`` (distributed DP: the expected sites per round) replaces
        FedAvg's weights: the sites sent unweighted, clipped, noised deltas.

        Raises:
            SecAggError: below t responses, or a sum that cannot be a FedAvg.
        """
        summed = self.collector.result()
        total = int(summed[-1][0])
        if total <= 0:
            raise SecAggError(f"the survivors' weights sum to {total}")
        summands, parties = len(self.collector.survivors), len(self.context.parties)
        # Each site sent x_i * n_i / cap (docs/privacy.md#secure-aggregation).
        scale = max(self._declared.values()) / total
        if denominator is not None:
            scale = 1.0 / denominator
        new: NDArrays = []
        for param, ring in zip(parameters, summed[:-1]):
            out = np.empty(param.shape, dtype=param.dtype)  # C order: ravel is a view
            flat_ring, flat_param, flat_out = ring.ravel(), param.ravel(), out.ravel()
            for start in range(0, ring.size, CHUNK):  # float64 only chunk-sized
                part = slice(start, start + CHUNK)
                delta = dequantize([flat_ring[part]], self.clip, parties,
                                   summands=summands)[0]
                delta *= scale
                np.add(delta, flat_param[part], out=delta)
                flat_out[part] = delta
            new.append(out)
        bound = max_error(self.clip, parties, summands=summands) * abs(scale)
        return SecureSum(summands, total, new, bound)


class MaskedInput:
    """One site's masked input as a round's Aggregator sees it (one ``add``)."""

    def __init__(self, collector: Collector, party: ClientId) -> None:
        self.count = 0
        self.total_examples = 0
        self._collector = collector
        self._party = party

    def add(self, update: NDArrays, num_examples: int) -> None:
        """Fold the int32 arrays of a masked ``fit_result`` (uint32 ring elements).

        Raises:
            SecAggError: on another dtype, count or shape.
        """
        if any(a.dtype != np.int32 for a in update):
            raise SecAggError("masked input: arrays must be int32")
        ring = [a.view(np.uint32) for a in update]
        self._collector.receive_masked_input(self._party, ring)
        self.count = 1

    def result(self) -> NDArrays:
        """Never called: a masked input is only ever part of the sum."""
        raise SecAggError("a masked input has no result of its own")


class SecureSum:
    """The unmasked aggregate of a secure round, as the round machine reads it.

    ``error_bound`` is the most fixed-point encoding can move any coordinate
    of the new model (before its cast to the model's dtype), against FedAvg of
    the same clipped updates.
    """

    def __init__(
        self, count: int, total_examples: int, parameters: NDArrays, error_bound: float
    ) -> None:
        self.count = count
        self.total_examples = total_examples
        self.error_bound = error_bound
        self._parameters = parameters

    def add(self, update: NDArrays, num_examples: int) -> None:
        """Refuse: the sum is complete."""
        raise SecAggError("the secure sum is complete")

    def result(self) -> NDArrays:
        """Return the new global model."""
        return self._parameters
