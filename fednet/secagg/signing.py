"""Site identities for secure aggregation against a malicious coordinator.

A site signs what it tells its peers through the coordinator with the ECDSA
P-256 key of its mutual-TLS certificate (``fednet ca``, subject CN = the
site's name); its peers check the certificate against the federation's CA
and the signature against the certificate (Bonawitz et al. 2017, section 6).
Every signed message is a domain-separated, length-prefixed encoding, so no
signature over one message or round verifies over another.

Nothing here reads files or the clock: callers pass PEM bytes and ``now``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fednet.secagg.context import Advertisement, RoundContext
from fednet.secagg.errors import SecAggError
from fednet.secagg.prg import CHACHA20

MAX_CERT_BYTES = 1536
"""Largest DER certificate a site may present (``fednet ca`` issues ~600)."""
MAX_SIGNATURE_BYTES = 72
"""Largest DER ECDSA P-256 signature."""
_ADVERTISE = b"fednet/secagg/advertise/v1"
_CONSISTENCY = b"fednet/secagg/consistency/v1"
_ECDSA = ec.ECDSA(hashes.SHA256())


def _field(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def _ids(ids: Sequence[str]) -> bytes:
    return _field(b"".join(_field(i.encode()) for i in ids))


def _round(context: RoundContext) -> bytes:
    """Encode the whole round context: run, round, parties, threshold, PRG.

    Signing the parties and t too means sites shown different rounds (another
    list of parties, a lower threshold, another PRG) cannot verify each other.
    The PRG is left out when ChaCha20, as releases before AES-CTR signed.
    """
    return (
        _field(context.run_id.encode())
        + _field(context.server_round.to_bytes(8, "big"))
        + _ids(context.parties)
        + _field(context.threshold.to_bytes(4, "big"))
        + (b"" if context.prg == CHACHA20 else _field(context.prg.encode()))
    )


def advertisement_bytes(context: RoundContext, adv: Advertisement) -> bytes:
    """Return what a site signs of its advertisement (its round, id, keys)."""
    return (
        _field(_ADVERTISE) + _round(context) + _field(adv.party_id.encode())
        + _field(adv.c_public) + _field(adv.s_public)
    )


def consistency_bytes(
    context: RoundContext, survivors: Sequence[str], dropped: Sequence[str]
) -> bytes:
    """Return what a survivor signs before unmasking: the sorted sets it was told."""
    return (
        _field(_CONSISTENCY) + _round(context)
        + _ids(sorted(survivors)) + _ids(sorted(dropped))
    )


@dataclass(frozen=True)
class SiteIdentity:
    """A site's signing key, its certificate (DER) and the CAs it trusts.

    ``cas`` may be empty: the site can then sign but not verify.
    """

    key: ec.EllipticCurvePrivateKey
    cert_der: bytes
    cas: tuple[x509.Certificate, ...]

    def sign(self, data: bytes) -> bytes:
        """Return the DER ECDSA-SHA256 signature of ``data``."""
        return self.key.sign(data, _ECDSA)


def load_identity(
    cert_pem: bytes, key_pem: bytes, ca_pem: bytes | None
) -> SiteIdentity:
    """Load a site's identity from its mTLS files' contents.

    Args:
        cert_pem: ``--tls-cert`` (the first certificate is the site's).
        key_pem: ``--tls-key``, an unencrypted ECDSA P-256 key.
        ca_pem: ``--ca-file`` (its CA certificates), or None.

    Raises:
        SecAggError: a file that does not hold what it should.
    """
    try:
        cert = x509.load_pem_x509_certificates(cert_pem)[0]
        key = serialization.load_pem_private_key(key_pem, password=None)
        cas = x509.load_pem_x509_certificates(ca_pem) if ca_pem else []
    except (ValueError, TypeError, IndexError) as e:
        raise SecAggError(f"cannot load the site's certificate or key: {e}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(
        key.curve, ec.SECP256R1
    ):
        raise SecAggError("the site's key is not an ECDSA P-256 key")
    if key.public_key() != cert.public_key():
        raise SecAggError("the site's key is not the key of its certificate")
    der = cert.public_bytes(serialization.Encoding.DER)
    if len(der) > MAX_CERT_BYTES:
        raise SecAggError(f"the site's certificate exceeds {MAX_CERT_BYTES} bytes")
    return SiteIdentity(key, der, tuple(c for c in cas if _is_ca(c)))


def certificate_key(
    der: bytes, party_id: str
) -> tuple[x509.Certificate, ec.EllipticCurvePublicKey]:
    """Parse a party's certificate; return it and its key, unchecked against a CA.

    Raises:
        SecAggError: a size out of bounds, malformed DER, another subject CN,
            a CA certificate or a key that is not ECDSA P-256.
    """
    if not isinstance(der, bytes) or not 0 < len(der) <= MAX_CERT_BYTES:
        raise SecAggError(f"certificate of {party_id}: not 1 to {MAX_CERT_BYTES} bytes")
    try:
        cert = x509.load_der_x509_certificate(der)
        cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        key = cert.public_key()
    except ValueError:
        raise SecAggError(f"certificate of {party_id}: malformed") from None
    if [a.value for a in cns] != [party_id]:
        raise SecAggError(f"certificate of {party_id}: issued to another name")
    if _is_ca(cert):
        raise SecAggError(f"certificate of {party_id}: a CA, not a site")
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(
        key.curve, ec.SECP256R1
    ):
        raise SecAggError(f"certificate of {party_id}: not an ECDSA P-256 key")
    return cert, key


def check_certificate(
    der: bytes, party_id: str, cas: Sequence[x509.Certificate], now: dt.datetime
) -> ec.EllipticCurvePublicKey:
    """Check a party's certificate and return its public key.

    The certificate must pass :func:`certificate_key` and be issued and
    signed by one of ``cas`` (each a CA by its basic constraints), valid at
    ``now`` as that CA is.

    Raises:
        SecAggError: naming the party and what is wrong.
    """
    cert, key = certificate_key(der, party_id)
    issuer = _issuer(cert, cas)
    if issuer is None:
        raise SecAggError(f"certificate of {party_id}: not issued by the CA")
    for what, c in (("certificate", cert), ("CA", issuer)):
        if not c.not_valid_before_utc <= now <= c.not_valid_after_utc:
            raise SecAggError(f"{what} of {party_id}: expired or not yet valid")
    return key


def check_signature(
    key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes, what: str
) -> None:
    """Check an ECDSA-SHA256 signature of ``data``.

    Raises:
        SecAggError: ``"<what>: signature does not verify"`` or a size error.
    """
    if not isinstance(signature, bytes) or not 0 < len(signature) <= (
        MAX_SIGNATURE_BYTES
    ):
        raise SecAggError(f"{what}: signature not 1 to {MAX_SIGNATURE_BYTES} bytes")
    try:
        key.verify(signature, data, _ECDSA)
    except InvalidSignature:
        raise SecAggError(f"{what}: signature does not verify") from None


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    except (x509.ExtensionNotFound, ValueError):
        return False
    return bool(basic.value.ca)


def _issuer(
    cert: x509.Certificate, cas: Sequence[x509.Certificate]
) -> x509.Certificate | None:
    """Return the CA of ``cas`` that signed ``cert``, if one did."""
    for ca in cas:
        if ca.subject != cert.issuer or not _is_ca(ca):
            continue
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return ca
    return None
