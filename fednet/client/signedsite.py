"""A site's policy and checks for signed secure rounds (docs/privacy.md).

The SITE decides whether it verifies, never the coordinator: a site with a
certificate (``--tls-cert``) verifies unless ``--secagg-trust-coordinator``
says otherwise, and then refuses any secure round that is not signed. In a
signed round it checks every roster row against its CA file before it shares
a key, and the survivors' consistency signatures before it reveals a share.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import ec

from fednet.secagg.context import Advertisement, RoundContext
from fednet.secagg.errors import SecAggError
from fednet.secagg.signed import (
    SignedAdvertisement,
    sign_advertisement,
    verify_consistency,
    verify_roster,
)
from fednet.secagg.signing import SiteIdentity, consistency_bytes, load_identity
from fednet.secagg.wire import (
    SecaggConsistency,
    SecaggConsistencySignature,
    SecaggSetup,
    SecaggShares,
    SecaggSignedAdvertise,
    SecaggSignedRoster,
    SecaggSignedSetup,
    SecaggSignedUnmask,
)
from fednet.settings import ClientSettings

logger = logging.getLogger(__name__)

TRUST_FLAG = "--secagg-trust-coordinator"


@dataclass(frozen=True)
class SecaggPolicy:
    """How this site takes part in secure rounds.

    Attributes:
        identity: its certificate, key and CAs (``--tls-cert``, ``--tls-key``,
            ``--ca-file``); None: it cannot sign (rounds stay unsigned).
        verify: check signed rounds, and refuse unsigned ones.
    """

    identity: SiteIdentity | None = None
    verify: bool = False

    def refusal(self, setup: SecaggSetup) -> str | None:
        """Return why this site refuses a secure round, or None if it joins."""
        signed = isinstance(setup, SecaggSignedSetup)
        if signed and self.identity is None:
            return "the round is signed but this site has no certificate (--tls-cert)"
        if self.verify and not signed:
            return (
                "the coordinator did not run the signed variant; this site verifies"
                " (it has --tls-cert) and never reveals shares unverified"
                f" ({TRUST_FLAG} opts out)"
            )
        if self.verify and self.identity is not None and not self.identity.cas:
            return f"no CA in --ca-file to verify sites with ({TRUST_FLAG} opts out)"
        return None


def secagg_policy(settings: ClientSettings) -> SecaggPolicy:
    """Load this site's identity from its mTLS files; decide whether it verifies.

    A certificate that cannot sign (not ECDSA P-256, unreadable) leaves the
    site unable to join signed rounds: it then refuses every secure round
    unless ``--secagg-trust-coordinator`` is given (logged at start).
    """
    if settings.tls_cert is None or settings.tls_key is None:
        return SecaggPolicy()
    ca = settings.ca_file
    verify = not settings.secagg_trust_coordinator
    try:
        identity = load_identity(
            settings.tls_cert.read_bytes(), settings.tls_key.read_bytes(),
            ca.read_bytes() if ca is not None else None,
        )
    except (OSError, SecAggError) as e:
        logger.error("secure aggregation: --tls-cert cannot sign (%s); this site"
                     " %s", e, "refuses secure rounds" if verify else "trusts the"
                     " coordinator")
        return SecaggPolicy(None, verify)
    if verify:
        logger.info("secure aggregation: signed rounds only, verified against"
                    " --ca-file (%s opts out)", TRUST_FLAG)
    else:
        logger.warning("secure aggregation: %s: this site signs but trusts the"
                       " coordinator to relay keys honestly", TRUST_FLAG)
    return SecaggPolicy(identity, verify)


@dataclass
class SignedRound:
    """What a signed round keeps: the certified keys and the sets it signed."""

    keys: dict[str, ec.EllipticCurvePublicKey] = field(default_factory=dict)
    told: tuple[tuple[str, ...], tuple[str, ...]] | None = None


def check_step(
    policy: SecaggPolicy, context: RoundContext, state: SignedRound | None,
    message: object,
) -> list[Advertisement]:
    """Check a stage message against the round's variant and its signatures.

    Returns:
        The advertisements of a signed roster (verified if this site
        verifies), else [].

    Raises:
        SecAggError: on a message of the other variant, or a failed check.
    """
    kinds = (SecaggSignedRoster, SecaggConsistency, SecaggSignedUnmask)
    if not isinstance(message, SecaggShares) and (
        isinstance(message, kinds) != (state is not None)
    ):
        variant = "a signed" if state is not None else "an unsigned"
        raise SecAggError(f"{getattr(message, 'type', '?')} in {variant} round")
    if isinstance(message, SecaggSignedRoster) and state is not None:
        return check_roster(policy, context, state, message)
    if isinstance(message, SecaggSignedUnmask) and state is not None:
        check_unmask(policy, context, state, message)
    return []


def advertise(
    policy: SecaggPolicy, context: RoundContext, adv: Advertisement
) -> SecaggSignedAdvertise:
    """Return this site's signed advertisement."""
    assert policy.identity is not None  # refusal() let no unsigned site in
    signed = sign_advertisement(policy.identity, context, adv)
    return SecaggSignedAdvertise(
        int(context.run_id), context.server_round, adv.c_public.hex(),
        adv.s_public.hex(), signed.signature.hex(), signed.certificate.hex(),
    )


def check_roster(
    policy: SecaggPolicy, context: RoundContext, state: SignedRound,
    message: SecaggSignedRoster,
) -> list[Advertisement]:
    """Verify a signed roster (if this site verifies); return its advertisements.

    Raises:
        SecAggError: on the first row that does not verify.
    """
    rows = [
        SignedAdvertisement(
            Advertisement(p, bytes.fromhex(c), bytes.fromhex(s)),
            bytes.fromhex(sig), bytes.fromhex(cert),
        )
        for p, c, s, sig, cert in message.advertisements
    ]
    if policy.verify and policy.identity is not None:
        now = dt.datetime.now(dt.timezone.utc)
        state.keys = verify_roster(context, rows, policy.identity.cas, now)
        logger.info("secure round %d: verified the signed advertisements of %d"
                    " sites", context.server_round, len(rows))
    return [row.advertisement for row in rows]


def sign_sets(
    policy: SecaggPolicy, context: RoundContext, state: SignedRound,
    message: SecaggConsistency,
) -> SecaggConsistencySignature:
    """Sign the survivor and dropout sets this site is told, once."""
    assert policy.identity is not None
    if state.told is not None:
        raise SecAggError("the consistency sets were already signed")
    state.told = (message.survivors, message.dropped)
    data = consistency_bytes(context, message.survivors, message.dropped)
    signature = policy.identity.sign(data)
    return SecaggConsistencySignature(
        message.run_id, message.server_round, signature.hex()
    )


def check_unmask(
    policy: SecaggPolicy, context: RoundContext, state: SignedRound,
    message: SecaggSignedUnmask,
) -> None:
    """Check the consistency signatures (if this site verifies) before unmasking.

    Raises:
        SecAggError: if this site signed no sets, or the check fails.
    """
    if state.told is None:
        raise SecAggError("an unmask request before the consistency stage")
    asked = (message.survivors, message.dropped)
    if policy.verify:
        signatures = tuple((p, bytes.fromhex(s)) for p, s in message.signatures)
        verify_consistency(context, state.keys, state.told, asked, signatures)
        logger.info("secure round %d: consistency verified: %d survivors signed"
                    " the same sets", context.server_round, len(signatures))
    elif tuple(map(sorted, asked)) != tuple(map(sorted, state.told)):
        raise SecAggError("the unmask request names other sets than were signed")
