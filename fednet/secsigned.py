"""The coordinator's extra work in a signed secure round, in wire messages.

In a signed round (every selected site announced ``secagg-signed``) the
coordinator relays each advertisement's signature and certificate in the
roster, which it cannot forge, and runs the consistency stage between the
masked inputs and the unmask request (docs/privacy.md#secure-aggregation).
It checks each signature against the signer's own certificate so that one
site's bad signature cannot make every honest site refuse the round.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric import ec

from fednet.secagg.context import Advertisement, RoundContext, UnmaskRequest
from fednet.secagg.errors import SecAggError
from fednet.secagg.signed import ConsistencyTally, SignedAdvertisement
from fednet.secagg.signed import advertisement_key
from fednet.secagg.wire import (
    SecaggConsistency,
    SecaggConsistencySignature,
    SecaggSignedAdvertise,
    SecaggSignedRoster,
    SecaggSignedUnmask,
)


class SignedStages:
    """Keep a signed round's signatures and certificates; run its consistency stage.

    Args:
        context: the round.
    """

    def __init__(self, context: RoundContext) -> None:
        self.context = context
        self._keys: dict[str, ec.EllipticCurvePublicKey] = {}
        self._rows: dict[str, tuple[str, str]] = {}  # party -> (signature, cert)
        self._tally: ConsistencyTally | None = None

    def advertisement(
        self, party: str, message: SecaggSignedAdvertise
    ) -> Advertisement:
        """Check a signed advertisement; return the advertisement it signs.

        Call :meth:`keep` once the collector took it.

        Raises:
            SecAggError: on a bad certificate or signature.
        """
        adv = Advertisement(
            party, bytes.fromhex(message.c_public), bytes.fromhex(message.s_public)
        )
        signed = SignedAdvertisement(
            adv, bytes.fromhex(message.signature), bytes.fromhex(message.certificate)
        )
        self._keys[party] = advertisement_key(self.context, signed)
        return adv

    def keep(self, party: str, message: SecaggSignedAdvertise) -> None:
        """Record the signature and certificate of an accepted advertisement."""
        self._rows[party] = (message.signature, message.certificate)

    def roster(
        self, ids: tuple[int, int], adverts: Sequence[Advertisement], cap: int
    ) -> SecaggSignedRoster:
        """Return the signed roster of the advertisements the collector kept."""
        rows = tuple(
            (a.party_id, a.c_public.hex(), a.s_public.hex(), *self._rows[a.party_id])
            for a in adverts
        )
        return SecaggSignedRoster(*ids, rows, cap)

    def consistency(
        self, ids: tuple[int, int], request: UnmaskRequest
    ) -> SecaggConsistency:
        """Open the consistency stage over the sets of the unmask request."""
        self._tally = ConsistencyTally(
            self.context, self._keys, request.survivors, request.dropped
        )
        return SecaggConsistency(*ids, request.dropped, request.survivors)

    def signature(self, party: str, message: SecaggConsistencySignature) -> None:
        """Take a survivor's consistency signature.

        Raises:
            SecAggError: outside the stage, or on a bad or repeated signature.
        """
        if self._tally is None:
            raise SecAggError("no consistency stage is open")
        self._tally.receive(party, bytes.fromhex(message.signature))

    def unmask(
        self, ids: tuple[int, int], request: UnmaskRequest
    ) -> SecaggSignedUnmask:
        """End the consistency stage: the unmask request with the signatures.

        Send it to the signers only.

        Raises:
            SecAggError: with fewer than t signatures (the round fails).
        """
        if self._tally is None:
            raise SecAggError("no consistency stage is open")
        signatures = tuple((p, s.hex()) for p, s in self._tally.close())
        return SecaggSignedUnmask(
            *ids, request.dropped, request.survivors, signatures
        )
