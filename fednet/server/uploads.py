"""Upload slots: only a few large ``fit_result`` transfers in flight at once.

Each large upload is reassembled in memory before it is validated and folded
into the round's aggregate, so the number of transfers in flight, not the
number of clients, bounds the coordinator's memory. A slot is granted for the
size the client asked for (which the session checked against what the run
expects); the session refuses a frame larger than that before joining it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar

from fednet.exceptions import ProtocolError
from fednet.protocol import UploadGrant, UploadRequest, serialize_parts
from fednet.server.registry import ClientConn, drop_socket

logger = logging.getLogger(__name__)

DEFAULT_SLOTS = 2
"""Large uploads the coordinator joins at once."""

GRANT_TIMEOUT_S = 120.0
"""A granted upload that has not begun by then frees its slot."""

MIN_UPLOAD_BYTES_PER_S = 100_000
"""An upload under way must average at least this rate (0.8 Mbit/s).

Once begun it has ``GRANT_TIMEOUT_S`` plus its size at this rate to finish;
then the sender's connection is dropped with the partial frame, and its slot
goes to the next client (a trickling peer cannot hold a slot for ever).
"""


class UploadRefused(ProtocolError):
    """A binary frame needs an upload grant the client does not hold."""

    code: ClassVar[str] = "upload_not_granted"


class UploadNotGranted(UploadRefused):
    """A client sent a large or multi-part frame without holding an upload slot."""


class UploadTooLarge(UploadRefused):
    """A client's frame is larger than its upload was granted for."""

    code: ClassVar[str] = "upload_too_large"


@dataclass(eq=False)
class _Slot:
    """One granted upload: its size and the timer that ends it (unused or slow)."""

    nbytes: int
    expiry: asyncio.TimerHandle | None = field(default=None, repr=False)
    begun: bool = False

    def stop_timer(self) -> None:
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None


class UploadGate:
    """Grant upload requests first come, first served, ``slots`` at a time.

    Grants are sent from tasks of their own: freeing a slot in one client's
    handler never waits on another client's socket.

    Args:
        slots: uploads allowed in flight at once.
        grant_timeout_s: a granted upload that has not begun by then frees
            its slot (the client may be stuck or gone); a timer expires it.
        min_rate: bytes per second an upload under way must average, after
            ``grant_timeout_s`` of grace; a slower sender is disconnected.
    """

    def __init__(
        self,
        slots: int = DEFAULT_SLOTS,
        grant_timeout_s: float = GRANT_TIMEOUT_S,
        min_rate: float = MIN_UPLOAD_BYTES_PER_S,
    ) -> None:
        self.slots = slots
        self.grant_timeout_s = grant_timeout_s
        self.min_rate = min_rate
        self._granted: dict[ClientConn, _Slot] = {}
        self._waiting: deque[tuple[ClientConn, UploadRequest]] = deque()
        self._sending: set[asyncio.Task[None]] = set()
        self.granted_total = 0

    def holds(self, conn: ClientConn) -> bool:
        """Return whether the client was granted an upload that has not finished."""
        return conn in self._granted

    def granted_bytes(self, conn: ClientConn) -> int | None:
        """Return the size the client's upload was granted for, or None."""
        slot = self._granted.get(conn)
        return slot.nbytes if slot is not None else None

    @property
    def in_flight(self) -> int:
        """Return how many granted uploads have not finished."""
        return len(self._granted)

    @property
    def waiting(self) -> int:
        """Return how many requests wait for a slot."""
        return len(self._waiting)

    def admit(self, conn: ClientConn, declared: int, length: int, direct: int) -> None:
        """Refuse a binary frame that needs a grant the client does not hold.

        Joining a large frame costs memory, and so does holding a large single
        message: only granted uploads may, up to the granted size, which keeps
        the coordinator's memory bounded even with misbehaving clients. The
        caller reads ``declared`` from the first part and calls this before it
        allocates anything.

        Args:
            conn: the sender.
            declared: the frame's length, from its first part's header.
            length: the length of that first part.
            direct: the largest frame allowed whole without a grant.

        Raises:
            UploadRefused: ``UploadNotGranted`` or ``UploadTooLarge``.
        """
        if declared <= min(length, direct):
            return
        slot = self._granted.get(conn)
        if slot is None:
            raise UploadNotGranted(
                f"a frame of {declared} bytes needs an upload_grant first"
            )
        if declared > slot.nbytes:
            raise UploadTooLarge(
                f"a frame of {declared} bytes exceeds the {slot.nbytes} granted"
            )
        if not slot.begun:
            slot.begun = True
            slot.stop_timer()
            deadline_s = self.grant_timeout_s + declared / self.min_rate
            slot.expiry = asyncio.get_running_loop().call_later(
                deadline_s, self._expire, conn, slot
            )

    async def request(self, conn: ClientConn, message: UploadRequest) -> None:
        """Queue a client's request and grant what the free slots allow."""
        self._forget_request(conn)
        self._waiting.append((conn, message))
        self._grant()

    async def finished(self, conn: ClientConn) -> None:
        """Free the client's slot (upload done, failed, or client gone)."""
        self._forget_request(conn)
        self._release(conn)

    async def settled(self) -> None:
        """Wait until the grants decided so far were sent (or failed)."""
        while self._sending:
            await asyncio.gather(*self._sending)

    def _forget_request(self, conn: ClientConn) -> None:
        self._waiting = deque((c, m) for c, m in self._waiting if c is not conn)

    def _release(self, conn: ClientConn) -> None:
        slot = self._granted.pop(conn, None)
        if slot is not None:
            slot.stop_timer()
            self._grant()

    def _expire(self, conn: ClientConn, slot: _Slot) -> None:
        if self._granted.get(conn) is not slot:
            return
        slot.expiry = None
        if slot.begun and conn.ws is not None:
            # Its partial frame lives in its session: dropping the socket ends both.
            logger.warning(
                "upload of %s too slow (under %g bytes/s); dropping its connection",
                conn.client_id,
                self.min_rate,
            )
            drop_socket(conn.ws)
        else:
            logger.warning("upload slot of %s expired unused", conn.client_id)
        self._release(conn)

    def _grant(self) -> None:
        for conn in [c for c in self._granted if not c.connected]:
            self._granted.pop(conn).stop_timer()
        loop = asyncio.get_running_loop()
        while self._waiting and len(self._granted) < self.slots:
            conn, message = self._waiting.popleft()
            if not conn.connected:
                continue
            slot = _Slot(message.nbytes)
            slot.expiry = loop.call_later(
                self.grant_timeout_s, self._expire, conn, slot
            )
            self._granted[conn] = slot
            self.granted_total += 1
            task = loop.create_task(self._send_grant(conn, slot, message))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send_grant(
        self, conn: ClientConn, slot: _Slot, message: UploadRequest
    ) -> None:
        grant = UploadGrant(message.run_id, message.server_round)
        try:
            sent = await conn.send(serialize_parts(grant))
        except Exception:  # noqa: BLE001 - a task's error would go unseen
            logger.exception("cannot send the upload grant of %s", conn.client_id)
            sent = False
        if not sent and self._granted.get(conn) is slot:
            self._release(conn)
