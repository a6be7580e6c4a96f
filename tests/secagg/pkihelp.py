"""A CA and site identities made in memory, for the signed-round tests."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from fednet import pki
from fednet.secagg.signing import SiteIdentity, load_identity

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)


@lru_cache(maxsize=None)
def ca(name: str = "fednet CA test") -> pki.Issued:
    """Return a CA (cached per name: key generation is the slow part)."""
    return pki.build_ca(name, NOW - dt.timedelta(days=1))


@lru_cache(maxsize=None)
def identity(site: str, ca_name: str = "fednet CA test") -> SiteIdentity:
    """Return a site's identity: its certificate from ``ca_name``, trusting it."""
    authority = ca(ca_name)
    leaf = pki.build_leaf(authority, site, [], NOW - dt.timedelta(days=1))
    return load_identity(leaf.cert_pem(), leaf.key_pem(), authority.cert_pem())
