"""Who a client socket is: its credential at the upgrade, its name at hello.

:func:`identify` reads the ``Authorization: Bearer`` token of a ``/ws``
upgrade before anything is allocated for the peer, and refuses it (401) unless
the token is the join token, a live site's credential, or absent where
clients join openly (:func:`~fednet.server.sites.client_auth_mode`). A refused
upgrade costs at most one indexed SQLite read. :meth:`Peer.admit` then checks
the name the peer says in ``hello``: a site's credential is good for its own
name only, and a join-token or anonymous peer may not take a registered
site's name; under mutual TLS the certificate's common name must be the name.

Revocation: :func:`disconnect_site` closes a revoked site's live socket at
once (``POST /api/sites/NAME/revoke``), and :func:`revocation_ctx` runs a
watcher that does the same every heartbeat for sites revoked on the state dir
by ``fednet sites revoke --state-dir``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import NoReturn

from aiohttp import WSCloseCode, web

from fednet.server.audit import AuditLog
from fednet.server.keys import AUDIT, REGISTRY, SETTINGS, SITES, STATS
from fednet.server.registry import Registry
from fednet.server.sites import SiteBook, client_auth_mode
from fednet.tlsctx import peer_common_name
from fednet.typing import ClientId

logger = logging.getLogger(__name__)

REVOKED_CLOSE_S = 5.0
"""How long a revoked site's socket may take to close before it is dropped."""

Refusal = tuple[str, str]
"""An error code of the protocol and its reason, as the peer is told."""


@dataclass(frozen=True)
class Peer:
    """A client socket as its upgrade identified it.

    ``principal`` is its audit actor: ``site:NAME``, ``join-token`` or
    ``anonymous``; ``site`` the registered site it proved to be, if any;
    ``cert_name`` the common name of its verified certificate under mutual TLS.
    """

    principal: str
    remote: str
    book: SiteBook = field(repr=False)
    audit: AuditLog = field(repr=False)
    site: str | None = None
    mutual_tls: bool = False
    cert_name: str | None = None

    def admit(self, name: str) -> Refusal | None:
        """Return why this peer may not join as ``name`` (audited), or None."""
        refusal = self._refusal(name)
        if refusal is not None:
            code, reason = refusal
            self.audit.record(
                self.principal,
                "client.refused",
                target=name,
                outcome="refused",
                remote=self.remote,
                detail=f"{code}: {reason}",
            )
        return refusal

    def _refusal(self, name: str) -> Refusal | None:
        if self.site is not None and name != self.site:
            reason = (
                f"the credential of site {self.site!r} was presented"
                f" under the name {name!r}"
            )
            return "identity_mismatch", reason
        if self.site is None and self.book.get(name) is not None:
            reason = (
                f"the name {name!r} belongs to a registered site:"
                " join with its credential (--site-token)"
            )
            return "name_reserved", reason
        if self.mutual_tls and self.cert_name != name:
            reason = f"the client certificate is for {self.cert_name!r}, not {name!r}"
            return "certificate_mismatch", reason
        return None


def identify(request: web.Request) -> Peer:
    """Return who the peer of a ``/ws`` upgrade is.

    Raises:
        web.HTTPUnauthorized: no acceptable credential (logged and audited).
    """
    app = request.app
    settings, book = app[SETTINGS], app[SITES]
    remote = request.remote or "unknown"
    mutual = settings.tls_client_ca is not None
    cert_name = peer_common_name(request.transport) if mutual else None
    if mutual and cert_name is None:
        _refuse_upgrade(request, "a client certificate is required (mutual TLS)")
    token, join = _bearer(request), settings.join_token

    def peer(principal: str, site: str | None = None) -> Peer:
        return Peer(principal, remote, book, app[AUDIT], site, mutual, cert_name)

    if token is not None and join is not None and _same(token, join):
        return peer("join-token")
    if token is not None:
        site = book.verify(token)
        if site is None:
            _refuse_upgrade(request, "invalid or revoked credential", token=True)
        return peer(f"site:{site}", site)
    if join is not None:
        _refuse_upgrade(request, "a join token or a site credential is required")
    if client_auth_mode(settings, book) != "open":
        _refuse_upgrade(request, "a site credential is required (--site-token)")
    return peer("anonymous")


def _bearer(request: web.Request) -> str | None:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    given = given.strip()
    return given if scheme.lower() == "bearer" and given else None


def _same(given: str, expected: str) -> bool:
    # Header values may hold surrogate escapes of undecodable bytes.
    return hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"),
        expected.encode("utf-8", "surrogateescape"),
    )


def _refuse_upgrade(
    request: web.Request, reason: str, *, token: bool = False
) -> NoReturn:
    """Log, count and audit a refused upgrade; raise its 401 (never the token)."""
    app, remote = request.app, request.remote or "unknown"
    app[STATS]["rejected:unauthorized"] += 1
    logger.warning("refused a client from %s: %s", remote, reason)
    app[AUDIT].record(
        "anonymous", "client.refused", outcome="refused", remote=remote, detail=reason
    )
    challenge = 'Bearer realm="fednet"'
    if token:
        challenge += ', error="invalid_token"'
    challenge += f', error_description="{reason}"'
    raise web.HTTPUnauthorized(
        text=f"{reason}\n", headers={"WWW-Authenticate": challenge}
    )


async def disconnect_site(registry: Registry, name: str) -> bool:
    """Close a revoked site's live socket (code 1008, reason ``revoked``).

    Returns:
        Whether a connection of that site was open.
    """
    conn = registry.get(ClientId(name))
    if conn is None or conn.site != name:
        return False
    closed = await registry.close_client(
        conn.client_id, WSCloseCode.POLICY_VIOLATION, b"revoked", REVOKED_CLOSE_S
    )
    if closed is not None:
        logger.info("closed the connection of revoked site %s", name)
    return closed is not None


async def close_revoked(registry: Registry, book: SiteBook) -> list[str]:
    """Close the connections of revoked sites; return their names.

    One indexed lookup per connected site, none for other clients.
    """
    sites = {c.site for c in registry.connected() if c.site is not None}
    if not sites:
        return []
    revoked = sorted(await asyncio.to_thread(book.revoked_among, sites))
    await asyncio.gather(*(disconnect_site(registry, name) for name in revoked))
    return revoked


async def watch_revocations(app: web.Application) -> None:
    """Every heartbeat, close the connections of sites revoked since."""
    period = app[SETTINGS].heartbeat_s
    while True:
        await asyncio.sleep(period)
        try:
            await close_revoked(app[REGISTRY], app[SITES])
        except Exception:
            logger.exception("could not check the sites for revocations")


_MODES = {
    "sites": "clients join with site credentials only",
    "join_token": "clients join with the join token or a site credential",
    "open": "clients join openly: anyone who reaches this server may join",
}


def _log_mode(app: web.Application) -> None:
    mode = client_auth_mode(app[SETTINGS], app[SITES])
    level = logging.WARNING if mode == "open" else logging.INFO
    logger.log(level, "%s", _MODES[mode])


async def revocation_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run :func:`watch_revocations` while the app serves (a ``cleanup_ctx``)."""
    _log_mode(app)
    task = asyncio.create_task(watch_revocations(app))
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
