"""Upload slots: only a few large ``fit_result`` transfers in flight at once.

Each large upload is reassembled in memory before it is validated and folded
into the round's aggregate, so the number of transfers in flight, not the
number of clients, bounds the coordinator's memory.
"""

from __future__ import annotations

import logging
import time
from collections import deque

from fednet.protocol import UploadGrant, UploadRequest, serialize_parts
from fednet.server.registry import ClientConn

logger = logging.getLogger(__name__)

DEFAULT_SLOTS = 2
GRANT_TIMEOUT_S = 120.0


class UploadGate:
    """Grant upload requests first come, first served, ``slots`` at a time.

    Args:
        slots: uploads allowed in flight at once.
        grant_timeout_s: a granted upload that has not arrived by then frees
            its slot (the client may be stuck or gone).
    """

    def __init__(
        self, slots: int = DEFAULT_SLOTS, grant_timeout_s: float = GRANT_TIMEOUT_S
    ) -> None:
        self.slots = slots
        self.grant_timeout_s = grant_timeout_s
        self._granted: dict[ClientConn, float] = {}
        self._waiting: deque[tuple[ClientConn, UploadRequest]] = deque()
        self.granted_total = 0

    def holds(self, conn: ClientConn) -> bool:
        """Return whether the client was granted an upload that has not finished."""
        return conn in self._granted

    @property
    def in_flight(self) -> int:
        """Return how many granted uploads have not finished."""
        return len(self._granted)

    @property
    def waiting(self) -> int:
        """Return how many requests wait for a slot."""
        return len(self._waiting)

    async def request(self, conn: ClientConn, message: UploadRequest) -> None:
        """Queue a client's request and grant what the free slots allow."""
        self._waiting = deque((c, m) for c, m in self._waiting if c is not conn)
        self._waiting.append((conn, message))
        await self._grant()

    async def finished(self, conn: ClientConn) -> None:
        """Free the client's slot (upload done, failed, or client gone)."""
        self._waiting = deque((c, m) for c, m in self._waiting if c is not conn)
        if self._granted.pop(conn, None) is not None:
            await self._grant()

    async def _grant(self) -> None:
        now = time.monotonic()
        for conn, since in list(self._granted.items()):
            if not conn.connected or now - since > self.grant_timeout_s:
                logger.warning("upload slot of %s expired", conn.client_id)
                del self._granted[conn]
        while self._waiting and len(self._granted) < self.slots:
            conn, message = self._waiting.popleft()
            if not conn.connected:
                continue
            self._granted[conn] = now
            self.granted_total += 1
            grant = UploadGrant(message.run_id, message.server_round)
            if not await conn.send(serialize_parts(grant)):
                self._granted.pop(conn, None)
