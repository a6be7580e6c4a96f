"""A small private CA: the certificates of ``fednet ca``, built in memory.

A federation's CA signs one certificate per coordinator host and per site.
Every leaf serves both ends of TLS (``serverAuth`` and ``clientAuth``): a
coordinator presents it to its clients, a site presents it under mutual TLS,
where its subject common name must be the site's name. Keys are ECDSA P-256.

Nothing here touches files or the clock: callers pass ``now`` and write the
PEM bytes (:mod:`fednet.admin.ca`).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fednet.exceptions import ConfigError

CA_VALIDITY = dt.timedelta(days=3650)
"""How long a CA certificate is valid: about 10 years."""

LEAF_VALIDITY = dt.timedelta(days=730)
"""How long a coordinator's or a site's certificate is valid: about 2 years."""

CLOCK_SKEW = dt.timedelta(minutes=5)
"""How far back ``notBefore`` goes, for peers whose clocks run a little late."""

_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def cert_pem(self) -> bytes:
        """Return the certificate as PEM."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        """Return the private key as unencrypted PKCS#8 PEM (keep it 0600)."""
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def is_dns_name(text: str) -> bool:
    """Return whether ``text`` is a host name that a DNS SAN may hold.

    Letters, digits and inner hyphens in dot-separated labels, 253 characters
    at most, and not an IP address.
    """
    if not text or len(text) > 253 or _is_ip(text):
        return False
    return all(_DNS_LABEL.match(label) for label in text.split("."))


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def alt_names(name: str, extra: Sequence[str]) -> list[x509.GeneralName]:
    """Return the SubjectAlternativeName entries of a leaf called ``name``.

    ``name`` becomes a DNS entry when it is a valid host name (an IP address
    entry when it is one), and so does each of ``extra``; duplicates are
    dropped.

    Raises:
        ConfigError: an ``extra`` entry is neither an IP address nor a DNS name.
    """
    entries: list[x509.GeneralName] = []
    for i, text in enumerate([name, *extra]):
        entry: x509.GeneralName
        if _is_ip(text):
            entry = x509.IPAddress(ipaddress.ip_address(text))
        elif is_dns_name(text):
            entry = x509.DNSName(text.lower())
        elif i == 0:
            continue  # a site name such as "lab@uni": its CN alone names it
        else:
            raise ConfigError(
                {"san": f"{text!r} is neither an IP address nor a DNS name"}
            )
        if entry not in entries:
            entries.append(entry)
    return entries


def new_key() -> ec.EllipticCurvePrivateKey:
    """Return a fresh ECDSA P-256 private key."""
    return ec.generate_private_key(ec.SECP256R1())


def build_ca(common_name: str, now: dt.datetime) -> Issued:
    """Return a new self-signed CA that can sign leaves but no further CAs.

    Args:
        common_name: the CA's subject CN, such as ``"fednet CA acme"``.
        now: the issue time (timezone-aware).
    """
    key = new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def build_leaf(
    ca: Issued, name: str, extra_names: Sequence[str], now: dt.datetime
) -> Issued:
    """Return the certificate of ``name``, a site or a host, signed by ``ca``.

    Subject CN is ``name``; the SANs are those of :func:`alt_names`; it is
    good for ``serverAuth`` and ``clientAuth``.

    Raises:
        ConfigError: an entry of ``extra_names`` is not a DNS name or IP address.
    """
    sans = alt_names(name, extra_names)
    key = new_key()
    public = key.public_key()
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca.cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(min(now + LEAF_VALIDITY, ca.cert.not_valid_after_utc))
        .add_extension(
            x509.BasicConstraints(ca=False, path_length=None), critical=True
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                ca_ski.value
            ),
            critical=False,
        )
    )
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(sans), critical=False
        )
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def load_ca(cert_pem: bytes, key_pem: bytes) -> Issued:
    """Load a CA written by :func:`build_ca` (``ca.crt`` and ``ca.key``).

    Raises:
        ConfigError: the files do not hold a CA certificate and its ECDSA key.
    """
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as e:
        raise ConfigError({"ca": f"cannot load the CA: {e}"}) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError({"ca": "ca.key is not an ECDSA key"})
    if key.public_key() != cert.public_key():
        raise ConfigError({"ca": "ca.key is not the key of ca.crt"})
    try:
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
        cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        raise ConfigError({"ca": "ca.crt is not a fednet CA certificate"}) from None
    if not basic.value.ca:
        raise ConfigError({"ca": "ca.crt is not a CA certificate"})
    return Issued(cert, key)


def describe(cert: x509.Certificate) -> str:
    """Return a one-line summary: subject CN, alternative names, expiry."""
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    parts = [f"CN={cn[0].value!s}" if cn else str(cert.subject.rfc4514_string())]
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        sans = None
    if sans is not None:
        dns = [f"DNS:{n}" for n in sans.value.get_values_for_type(x509.DNSName)]
        ips = [f"IP:{n}" for n in sans.value.get_values_for_type(x509.IPAddress)]
        parts.append(", ".join(dns + ips))
    parts.append(f"valid until {cert.not_valid_after_utc:%Y-%m-%d}")
    return "; ".join(parts)
