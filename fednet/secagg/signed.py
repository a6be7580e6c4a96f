"""Signed advertisements and the consistency check of a secure round (sans-I/O).

The signed variant of a round (Bonawitz et al. 2017, section 6) adds two
checks a site makes before it reveals anything: every advertisement in the
roster is signed by the certified party it names (so the coordinator cannot
substitute keys), and, before the unmask stage, at least t certified
survivors signed the very survivor and dropout sets this site was told (so the
coordinator cannot tell different sites different sets).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from fednet.secagg.context import Advertisement, RoundContext, check_advertisement
from fednet.secagg.context import check_id_set, check_sender
from fednet.secagg.errors import SecAggError
from fednet.secagg.signing import (
    SiteIdentity,
    advertisement_bytes,
    certificate_key,
    check_certificate,
    check_signature,
    consistency_bytes,
)

Keys = Mapping[str, ec.EllipticCurvePublicKey]
Signatures = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True)
class SignedAdvertisement:
    """An advertisement, its signer's signature and certificate (DER)."""

    advertisement: Advertisement
    signature: bytes
    certificate: bytes


def sign_advertisement(
    identity: SiteIdentity, context: RoundContext, adv: Advertisement
) -> SignedAdvertisement:
    """Sign this site's advertisement for the round."""
    data = advertisement_bytes(context, adv)
    return SignedAdvertisement(adv, identity.sign(data), identity.cert_der)


def advertisement_key(
    context: RoundContext, signed: SignedAdvertisement
) -> ec.EllipticCurvePublicKey:
    """Check a signed advertisement against its own certificate (no CA).

    The coordinator does this to keep a site's bad signature from failing
    every honest site's check; the sites check the CA too
    (:func:`verify_roster`).

    Raises:
        SecAggError: on a malformed advertisement, certificate or signature.
    """
    check_advertisement(context, signed.advertisement)
    _, key = certificate_key(signed.certificate, signed.advertisement.party_id)
    _check_signed(context, signed, key)
    return key


def verify_roster(
    context: RoundContext,
    rows: Sequence[SignedAdvertisement],
    cas: Sequence[x509.Certificate],
    now: dt.datetime,
) -> dict[str, ec.EllipticCurvePublicKey]:
    """Check every row of a signed roster; return each party's certified key.

    Raises:
        SecAggError: naming the first row whose certificate does not chain to
            ``cas``, is not valid at ``now`` or names another party, or whose
            signature does not verify over this round's advertisement.
    """
    if not cas:
        raise SecAggError("no CA to verify the roster against (--ca-file)")
    keys: dict[str, ec.EllipticCurvePublicKey] = {}
    for row in rows:
        party = row.advertisement.party_id
        check_advertisement(context, row.advertisement)
        key = check_certificate(row.certificate, party, cas, now)
        _check_signed(context, row, key)
        keys[party] = key
    return keys


def _check_signed(
    context: RoundContext, signed: SignedAdvertisement, key: ec.EllipticCurvePublicKey
) -> None:
    """Check an advertisement's signature over this round with its signer's key."""
    adv = signed.advertisement
    data = advertisement_bytes(context, adv)
    check_signature(key, signed.signature, data, f"advertisement of {adv.party_id}")


def verify_consistency(
    context: RoundContext,
    keys: Keys,
    told: tuple[tuple[str, ...], tuple[str, ...]],
    asked: tuple[tuple[str, ...], tuple[str, ...]],
    signatures: Signatures,
) -> None:
    """Check the signatures of the consistency stage before unmasking.

    Args:
        context: the round.
        keys: the certified keys of the roster this site verified.
        told: the (survivors, dropped) this site was told and signed.
        asked: the (survivors, dropped) of the unmask request.
        signatures: (signer, signature) pairs the coordinator forwards.

    Raises:
        SecAggError: if the request's sets are not those signed, a signer is
            repeated or not a certified survivor, a signature does not verify
            over ``told``, or fewer than t survivors signed.
    """
    survivors, dropped = (tuple(sorted(ids)) for ids in told)
    if (survivors, dropped) != tuple(tuple(sorted(ids)) for ids in asked):
        raise SecAggError("the unmask request names other sets than were signed")
    data = consistency_bytes(context, survivors, dropped)
    signers: set[str] = set()
    for signer, signature in signatures:
        if signer in signers:
            raise SecAggError(f"consistency: {signer!r:.80} signed twice")
        if signer not in keys or signer not in survivors:
            raise SecAggError(
                f"consistency: {signer!r:.80} is not a certified survivor"
            )
        check_signature(keys[signer], signature, data, f"consistency of {signer}")
        signers.add(signer)
    if len(signers) < context.threshold:
        raise SecAggError(
            f"consistency: {len(signers)} signatures, threshold {context.threshold}"
        )


class ConsistencyTally:
    """The coordinator's consistency stage: collect the survivors' signatures.

    Args:
        context: the round.
        keys: each advertiser's key, from :func:`advertisement_key`.
        survivors: the survivors it told every survivor.
        dropped: the dropped parties it told every survivor.
    """

    def __init__(
        self,
        context: RoundContext,
        keys: Keys,
        survivors: tuple[str, ...],
        dropped: tuple[str, ...],
    ) -> None:
        self.context = context
        self._keys = keys
        self._survivors = check_id_set(context, survivors, "survivors")
        self._data = consistency_bytes(context, survivors, dropped)
        self._signatures: dict[str, bytes] = {}

    def receive(self, sender: str, signature: bytes) -> None:
        """Keep a survivor's signature (checked, so one bad site fails no other).

        Raises:
            SecAggError: from a non-survivor, a repeat or a bad signature.
        """
        check_sender(sender)
        if sender not in self._survivors or sender in self._signatures:
            raise SecAggError(f"unexpected consistency signature from {sender!r:.80}")
        check_signature(self._keys[sender], signature, self._data,
                        f"consistency of {sender}")
        self._signatures[sender] = signature

    def close(self) -> Signatures:
        """End the stage and return the (signer, signature) pairs, sorted.

        Raises:
            SecAggError: with fewer than t signatures (the round fails).
        """
        count, t = len(self._signatures), self.context.threshold
        if count < t:
            raise SecAggError(f"only {count} consistency signatures, threshold {t}")
        return tuple(sorted(self._signatures.items()))
