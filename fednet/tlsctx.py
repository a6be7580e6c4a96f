"""TLS contexts of the coordinator and its clients, and the peer's verified name.

The coordinator serves https and wss with ``--tls-cert``/``--tls-key``. With
``--tls-client-ca`` it also asks every peer for a certificate and verifies a
presented one against that CA (a handshake with any other certificate fails);
the client WebSocket then requires one whose subject common name is the
site's name, while browsers may still open the dashboard without one.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from fednet.exceptions import ConfigError


def server_ssl_context(
    cert: Path, key: Path, client_ca: Path | None = None
) -> ssl.SSLContext:
    """Return the coordinator's TLS context (TLS 1.2 or later).

    Raises:
        ConfigError: a file is missing or does not hold what it should.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(context, cert, key, "tls_cert")
    if client_ca is not None:
        _load_ca(context, client_ca, "tls_client_ca")
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


def client_ssl_context(
    ca_file: Path | None, cert: Path | None = None, key: Path | None = None
) -> ssl.SSLContext:
    """Return a client's TLS context: the system CAs, or only ``ca_file``'s.

    Host names are always checked. ``cert``/``key`` present a client
    certificate, for a coordinator that asks for one (mutual TLS).

    Raises:
        ConfigError: a file is missing or does not hold what it should.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        _load_ca(context, ca_file, "ca_file")
    if cert is not None and key is not None:
        _load_chain(context, cert, key, "tls_cert")
    return context


def peer_common_name(transport: Any) -> str | None:
    """Return the subject common name of a verified peer certificate, if any.

    ``transport`` is an asyncio transport (``request.transport``); a plain
    socket, or a TLS peer that presented no certificate, gives None.
    """
    if transport is None:
        return None
    cert = transport.get_extra_info("peercert")
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for attribute, value in rdn:
            if attribute == "commonName":
                return str(value)
    return None


def tls_failure(
    error: BaseException, presented_cert: bool, closed_early: bool = False
) -> str | None:
    """Return what a client's failed TLS connection means for its user, or None.

    Args:
        error: what dialling raised (aiohttp keeps the ``ssl`` error in its
            ``certificate_error`` or ``os_error``).
        presented_cert: the client presented a certificate (``--tls-cert``).
        closed_early: the coordinator closed the connection before the
            WebSocket upgrade was answered, as a TLS 1.3 coordinator does
            when it rejects the client's certificate after the handshake.
    """
    causes = (
        getattr(error, "certificate_error", None),
        getattr(error, "os_error", None),
        error.__cause__,
        error,
    )
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return (
                "TLS: the coordinator's certificate was not verified"
                f" ({cause.verify_message}): give the CA that signed it"
                " with --ca-file"
            )
        if isinstance(cause, ssl.SSLError):
            reason = getattr(cause, "reason", None) or str(cause)
            return f"TLS handshake failed ({reason}){_hint(presented_cert)}"
    if closed_early and presented_cert:
        return f"the coordinator closed the connection at once{_hint(True)}"
    return None


def _hint(presented_cert: bool) -> str:
    if presented_cert:
        return (
            ": does the coordinator trust this client's certificate"
            " (--tls-cert, from the CA of its --tls-client-ca)?"
        )
    return ": the coordinator may require a client certificate (--tls-cert)"


def _load_chain(context: ssl.SSLContext, cert: Path, key: Path, name: str) -> None:
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError({name: f"cannot load {cert} with {key}: {e}"}) from None


def _load_ca(context: ssl.SSLContext, ca_file: Path, name: str) -> None:
    try:
        context.load_verify_locations(cafile=ca_file)
    except (OSError, ssl.SSLError) as e:
        message = f"cannot load CA certificates from {ca_file}: {e}"
        raise ConfigError({name: message}) from None
