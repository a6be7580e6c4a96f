"""TEST ONLY: a coordinator that substitutes a site's key (``--test-secagg-swap-key``).

The hidden server flag makes this coordinator act as the malicious one of
docs/privacy.md: in every secure round's roster it replaces the first site's
``s_public`` with a key of its own, in the copies sent to the other sites
(the site itself gets the true roster, so its own check passes). With signed
rounds every other site refuses; without, nobody notices. Never use it
outside tests.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from fednet.protocol import Message
from fednet.secagg.wire import SecaggRoster, SecaggSignedRoster
from fednet.typing import ClientId

logger = logging.getLogger(__name__)

Posts = list[tuple[tuple[ClientId, ...], Message]]


def swap_key(recipients: tuple[ClientId, ...], message: Message, on: bool) -> Posts:
    """Return what to post: with ``on``, a forged roster for all but its victim."""
    if not on or not isinstance(message, (SecaggRoster, SecaggSignedRoster)):
        return [(recipients, message)]
    victim = message.advertisements[0][0]
    fake = X25519PrivateKey.generate().public_key().public_bytes_raw().hex()
    rows: Any = tuple(
        (row[0], row[1], fake, *row[3:]) if row[0] == victim else row
        for row in message.advertisements
    )
    logger.warning("TEST HOOK --test-secagg-swap-key: round %d's roster swaps the"
                   " s key of %s", message.server_round, victim)
    forged = dataclasses.replace(message, advertisements=rows)
    others = tuple(r for r in recipients if r != victim)
    return [(tuple(r for r in recipients if r == victim), message), (others, forged)]
