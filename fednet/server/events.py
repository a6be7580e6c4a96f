"""A fan-out of server events (clients, rounds, runs) to live dashboard sockets."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

logger = logging.getLogger(__name__)

QUEUE_SIZE = 1000


class EventHub:
    """Publish events to every subscriber's bounded queue.

    A subscriber too slow to keep up loses its queue (it is marked
    ``overflowed``) and is expected to resynchronise from a snapshot rather
    than make the server buffer without bound.
    """

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self.seq = 0

    def subscribe(self) -> asyncio.Queue[dict[str, Any] | None]:
        """Return a new queue that receives every event from now on."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(QUEUE_SIZE)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        """Stop delivering events to a queue."""
        self._queues.discard(queue)

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        """Deliver ``{"type": kind, "seq": n, **data}`` to every subscriber."""
        self.seq += 1
        event = {"type": kind, "seq": self.seq, **data}
        for queue in list(self._queues):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                logger.warning("dashboard subscriber too slow; dropping its queue")
                self._queues.discard(queue)
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(None)
