"""A run's outgoing messages: one task per recipient, in order per client.

The driver never waits for a socket: it posts what its machine produced and
carries on (timers, inputs, records); each recipient's copy is sent in a task
of its own, so a client that stops reading delays nobody but itself, until
its send deadline (``ServerSettings.send_timeout_s``) drops it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence

from fednet.protocol import Message, serialize_parts
from fednet.server.registry import ClientConn, Part, Registry
from fednet.server.tamper import swap_key
from fednet.typing import ClientId

logger = logging.getLogger(__name__)

Delivered = Callable[[ClientId, Message, bool], None]
"""Told, on the event loop, whether a message left for a client (True) or not."""


class Outbox:
    """Send a run's messages without waiting for any recipient.

    A client's messages leave in the order they were posted: each send waits
    for the one before it on the same connection, and fails without sending
    when that one failed (the client missed a message; its connection is
    closed or being dropped). Messages to different clients, or to a client's
    new connection, go independently.

    Args:
        registry: the connected clients.
        delivered: called with each send's outcome until :meth:`close`.
    """

    def __init__(self, registry: Registry, delivered: Delivered) -> None:
        self._registry = registry
        self._delivered = delivered
        self._tasks: set[asyncio.Task[bool]] = set()
        self._last: dict[ClientConn, asyncio.Task[bool]] = {}
        self._closed = False

    @property
    def pending(self) -> int:
        """Return how many sends are in progress or waiting for their turn."""
        return len(self._tasks)

    def post(self, recipients: Sequence[ClientId], message: Message) -> None:
        """Start sending ``message`` to each recipient and return at once.

        Ignored once the outbox is closed.
        """
        if self._closed or not recipients:
            return
        hook = self._registry.test_swap_key  # TEST ONLY: fednet/server/tamper.py
        for to, sent in swap_key(tuple(recipients), message, hook):
            self._post(to, sent)

    def _post(self, recipients: Sequence[ClientId], message: Message) -> None:
        parts = serialize_parts(message)
        for client_id in recipients:
            conn = self._registry.get(client_id)
            previous = self._last.get(conn) if conn is not None else None
            task = asyncio.create_task(
                _deliver(conn, parts, previous), name=f"send-{message.type}-{client_id}"
            )
            self._tasks.add(task)
            if conn is not None:
                self._last[conn] = task
            done = functools.partial(self._done, client_id, conn, message)
            task.add_done_callback(done)

    async def close(self, *, cancel: bool = True) -> None:
        """Take no more messages; cancel the sends in progress and wait for them.

        A client left with part of a message has its connection dropped (see
        :meth:`ClientConn.send <fednet.server.registry.ClientConn.send>`). With
        ``cancel=False`` (a run that ended by itself) the sends in progress
        finish on their own, unreported: the run's last replies still go out,
        and a stuck send ends at its deadline or when the server closes its
        socket.
        """
        self._closed = True
        tasks = list(self._tasks) if cancel else []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _done(
        self,
        client_id: ClientId,
        conn: ClientConn | None,
        message: Message,
        task: asyncio.Task[bool],
    ) -> None:
        self._tasks.discard(task)
        if conn is not None and self._last.get(conn) is task:
            del self._last[conn]
        if task.cancelled():
            return
        if (error := task.exception()) is not None:
            logger.error(
                "sending %s to %s failed",
                message.type,
                client_id,
                exc_info=error,
                extra={"client_id": client_id},
            )
        if not self._closed:
            self._delivered(client_id, message, _succeeded(task))


async def _deliver(
    conn: ClientConn | None, parts: Sequence[Part], previous: asyncio.Task[bool] | None
) -> bool:
    if previous is not None:
        await asyncio.wait([previous])
        if not _succeeded(previous):
            return False
    return conn is not None and await conn.send(parts)


def _succeeded(task: asyncio.Task[bool]) -> bool:
    return not task.cancelled() and task.exception() is None and task.result()
