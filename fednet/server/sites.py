"""Site identity: each site's credential, stored as a hash, bound to its name.

``fednet sites add NAME`` makes a credential ``NAME:SECRET`` (the name first,
so a client can default its ``--name`` to it) and prints it once; the
coordinator keeps only the SHA-256 of the whole credential. The secret is 32
random bytes, so a fast hash is as strong as a slow one here: there is
nothing to guess.

How clients authenticate (:func:`client_auth_mode`):

- ``join_token``: a shared join token is configured (quick starts, demos).
  A client presents it and chooses a name, but not the name of a registered
  site: that name belongs to its credential.
- ``sites``: no join token, and sites are registered or an admin or viewer
  token is set. Only site credentials join.
- ``open``: none of that (loopback demos and tests, or ``--insecure``):
  anyone may join.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from fednet.server.store import Store
from fednet.settings import ServerSettings

SITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")
"""A site's name: a client name (what a client says in ``hello``)."""

ClientAuth = Literal["sites", "join_token", "open"]

_CHUNK = 500
"""Names per ``IN (...)`` query (SQLite allowed 999 parameters before 3.32)."""


class SiteError(ValueError):
    """A site operation that cannot be done (bad name, exists, unknown)."""


class SiteNameError(SiteError):
    """The name is not a valid client name (HTTP 400)."""


class SiteNotFound(SiteError):
    """No site has this name (HTTP 404)."""


class SiteConflict(SiteError):
    """The site exists already, or is revoked already (HTTP 409)."""


@dataclass(frozen=True)
class Site:
    """A registered site as ``fednet sites list`` and ``GET /api/sites`` show it."""

    name: str
    created_at: float
    revoked_at: float | None

    @property
    def revoked(self) -> bool:
        """Return whether the site's credential was revoked."""
        return self.revoked_at is not None

    def to_dict(self) -> dict[str, Any]:
        """Return the site as the API lists it (never its credential)."""
        return {
            "name": self.name,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
            "revoked": self.revoked,
        }


def token_hash(token: str) -> str:
    """Return the stored form of a credential."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class SiteBook:
    """The ``sites`` table: add, verify, list and revoke site credentials.

    Args:
        store: the coordinator's store, or one opened on its state dir.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, name: str, now: float) -> str:
        """Register a site and return its credential (shown once, never stored).

        Raises:
            SiteError: the name is not a valid client name or is taken.
        """
        if not SITE_NAME.fullmatch(name):
            raise SiteNameError(f"invalid site name {name!r}")
        token = f"{name}:{secrets.token_urlsafe(32)}"
        with self.store.transaction() as db:
            if db.execute("SELECT 1 FROM sites WHERE name = ?", (name,)).fetchone():
                raise SiteConflict(f"site {name!r} exists")
            db.execute(
                "INSERT INTO sites (name, token_hash, created_at) VALUES (?, ?, ?)",
                (name, token_hash(token), now),
            )
        return token

    def verify(self, token: str) -> str | None:
        """Return the name of the live site this credential belongs to, or None."""
        name, sep, _ = token.partition(":")
        if not sep or not SITE_NAME.fullmatch(name):
            return None
        rows = self.store.read(
            "SELECT token_hash, revoked_at FROM sites WHERE name = ?", (name,)
        )
        if not rows or rows[0]["revoked_at"] is not None:
            return None
        if not hmac.compare_digest(rows[0]["token_hash"], token_hash(token)):
            return None
        return name

    def revoke(self, name: str, now: float) -> None:
        """Revoke a site's credential for good.

        Raises:
            SiteError: no such site, or it is revoked already.
        """
        cursor = self.store.write(
            "UPDATE sites SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
            (now, name),
        )
        if cursor.rowcount == 0:
            known = self.store.read("SELECT 1 FROM sites WHERE name = ?", (name,))
            if known:
                raise SiteConflict(f"site {name!r} is revoked already")
            raise SiteNotFound(f"no site {name!r}")

    def get(self, name: str) -> Site | None:
        """Return one site, revoked or not."""
        rows = self.store.read(
            "SELECT name, created_at, revoked_at FROM sites WHERE name = ?", (name,)
        )
        return Site(**dict(rows[0])) if rows else None

    def list(self) -> list[Site]:
        """Return every site, by name."""
        rows = self.store.read(
            "SELECT name, created_at, revoked_at FROM sites ORDER BY name", ()
        )
        return [Site(**dict(row)) for row in rows]

    def revoked_names(self) -> set[str]:
        """Return the names of revoked sites (checked once a heartbeat)."""
        rows = self.store.read(
            "SELECT name FROM sites WHERE revoked_at IS NOT NULL", ()
        )
        return {row["name"] for row in rows}

    def revoked_among(self, names: Iterable[str]) -> set[str]:
        """Return which of ``names`` are revoked sites (one indexed lookup each).

        The revocation watcher asks this of the connected sites' names every
        heartbeat, so a tick costs what is connected, not every site ever.
        """
        wanted = sorted(set(names))
        revoked: set[str] = set()
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            rows = self.store.read(
                f"SELECT name FROM sites WHERE name IN ({marks})"
                " AND revoked_at IS NOT NULL",
                tuple(chunk),
            )
            revoked.update(row["name"] for row in rows)
        return revoked

    def any(self) -> bool:
        """Return whether any site was ever registered."""
        return bool(self.store.read("SELECT 1 FROM sites LIMIT 1", ()))


def client_auth_mode(settings: ServerSettings, book: SiteBook) -> ClientAuth:
    """Return how clients authenticate on this coordinator (module docstring)."""
    if settings.join_token is not None:
        return "join_token"
    credentials = settings.admin_token is not None or settings.viewer_token is not None
    if credentials or book.any():
        return "sites"
    return "open"
