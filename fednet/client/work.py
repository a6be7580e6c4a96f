"""What one connection waits for, bounded: queued requests and upload grants."""

from __future__ import annotations

import asyncio
import logging

from fednet.buffers import BufferPool
from fednet.protocol import (
    BINARY_TYPES,
    Evaluate,
    Fit,
    InitRequest,
    Message,
    serialize_parts,
)
from fednet.secagg.wire import (
    SecaggConsistency,
    SecaggRoster,
    SecaggShares,
    SecaggSignedRoster,
    SecaggSignedUnmask,
    SecaggUnmask,
)

logger = logging.getLogger(__name__)

MAX_QUEUED_REQUESTS = 8
"""Fit and evaluate requests a connection holds before dropping the oldest.

The coordinator has at most one request outstanding per client (two when a
round times out while the client still trains), so a longer queue means a
misbehaving peer; each request holds a whole model.
"""

GRANT_WAIT_S = 150.0
"""Longest wait for an ``upload_grant`` before the result is given up.

A bit above the coordinator's grant timeout (120 s), past which its round has
moved on; read at each wait, so tests may shorten it.
"""

GrantKey = tuple[int, int]
Request = (
    Fit | Evaluate | InitRequest | SecaggRoster | SecaggShares | SecaggUnmask
    | SecaggSignedRoster | SecaggConsistency | SecaggSignedUnmask
)
"""What a connection answers in order: trainer work, a run's initial model
from this site's trainer, and secure-round stages."""


class WorkQueue:
    """Fit and evaluate requests in arrival order, at most ``maximum`` of them.

    A request beyond the bound drops the oldest one waiting: the oldest is the
    stalest, its round the likeliest to be over, while the newest is the one
    the coordinator still waits for. Nothing is sent for a dropped request.

    Args:
        buffers: where a dropped request's joined-frame buffers go back to.
        maximum: requests held at once.
    """

    def __init__(self, buffers: BufferPool, maximum: int = MAX_QUEUED_REQUESTS) -> None:
        self._buffers = buffers
        self._queue: asyncio.Queue[Request] = asyncio.Queue(maximum)

    def put(self, request: Request) -> None:
        """Queue a request, dropping the oldest waiting one if the queue is full."""
        if self._queue.full():
            dropped = self._queue.get_nowait()
            if isinstance(dropped, (Fit, Evaluate)):
                self._buffers.release(dropped.parameters)
            logger.warning(
                "more than %d requests queued: dropped %s of round %d",
                self._queue.maxsize,
                dropped.type,
                dropped.server_round,
                extra={"server_round": dropped.server_round},
            )
        self._queue.put_nowait(request)

    async def get(self) -> Request:
        """Return the oldest request, waiting for one if there is none."""
        return await self._queue.get()


class UploadGrants:
    """The upload grants a connection waits for, each at most ``GRANT_WAIT_S``.

    Only requested grants count: one for a round nobody waits for (the wait
    gave up, or the coordinator misbehaves) is ignored, so stray grants
    neither pile up nor unblock a later upload.
    """

    def __init__(self) -> None:
        self._events: dict[GrantKey, asyncio.Event] = {}
        self._refused: set[GrantKey] = set()

    def expect(self, key: GrantKey) -> None:
        """Start waiting for ``key``'s grant (before asking, so none is missed)."""
        self._events[key] = asyncio.Event()

    def grant(self, key: GrantKey) -> None:
        """Record a grant from the coordinator; ignore one nobody waits for."""
        event = self._events.get(key)
        if event is None:
            logger.warning("ignored an upload grant for round %d: not asked", key[1])
            return
        event.set()

    def refuse(self, key: GrantKey) -> None:
        """Record that the coordinator refused ``key``'s upload: stop waiting."""
        if key in self._events:
            self._refused.add(key)
            self._events[key].set()

    async def wait(self, key: GrantKey) -> bool:
        """Wait for ``key``'s grant; return False if refused or none came in time."""
        event = self._events[key]
        try:
            async with asyncio.timeout(GRANT_WAIT_S):  # wait_for may drop a cancel
                await event.wait()
        except TimeoutError:
            return False
        finally:
            del self._events[key]
        if key in self._refused:
            self._refused.discard(key)
            return False
        return True


async def reply_parts(
    reply: Message, part_bytes: int
) -> list[str | bytes | memoryview]:
    """Encode a reply into the WebSocket messages that carry it.

    A binary reply (a model) is encoded in a worker thread; a text one (at most
    1 MiB of JSON, mostly a few hundred bytes) right here, where the thread
    hop would cost more than the encoding: a secure round has three of them.
    """
    if reply.type in BINARY_TYPES:
        return await asyncio.to_thread(serialize_parts, reply, part_bytes)
    return serialize_parts(reply)
