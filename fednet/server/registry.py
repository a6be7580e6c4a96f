"""Clients known to the coordinator: live connections and recently departed ones."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from fednet.learning.trainers.builtin import BUILTIN
from fednet.protocol import Hello
from fednet.server.events import ClientChange, ClientChanged, EventHub
from fednet.typing import ClientId

logger = logging.getLogger(__name__)

MAX_DEPARTED = 1000
DEFAULT_SEND_TIMEOUT_S = 30.0
"""How long one message may take to leave (``ServerSettings.send_timeout_s``)."""

Part = str | bytes | bytearray | memoryview


def drop_socket(ws: web.WebSocketResponse) -> None:
    """Drop a connection at once, discarding what it has not sent yet.

    A closing handshake cannot reach a peer that does not read: the close frame
    would queue behind the unread data, and closing the transport would wait
    for that data to drain. The transport is aborted instead: its buffers and
    file descriptor are released now, the peer sees a reset, and the socket's
    handler sees the connection end like any departure.
    """
    request = ws._req  # aiohttp has no public way to abort a WebSocketResponse
    transport = request.transport if request is not None else None
    if transport is not None:
        transport.abort()


async def close_socket(
    ws: web.WebSocketResponse, code: int, reason: bytes, timeout_s: float
) -> None:
    """Close a socket with a code and reason; drop it if that takes over ``timeout_s``.

    Closing waits for what is queued to leave, which a peer that stopped
    reading never lets happen.
    """
    try:
        async with asyncio.timeout(timeout_s):
            await ws.close(code=code, message=reason)
    except TimeoutError:
        drop_socket(ws)
    except asyncio.CancelledError:
        if _asked_to_stop():
            raise
        drop_socket(ws)


def _asked_to_stop() -> bool:
    """Return whether the current task was cancelled, not just a future it awaited.

    Every writer of an aiohttp connection awaits the same drain future; when
    one of them is cancelled (a send's deadline), the others see a
    CancelledError too, and so does any later writer while the peer reads
    nothing.
    """
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0


@dataclass(eq=False)
class ClientConn:
    """One client as the coordinator sees it."""

    client_id: ClientId
    hello: Hello
    ws: web.WebSocketResponse | None
    address: str
    connected_since: float
    last_seen: float
    status: str = "idle"
    eligible: bool = True
    note: str | None = None
    last_round: dict[str, Any] | None = None
    site: str | None = None
    """The registered site whose credential the client presented, if any."""
    trainers: tuple[dict[str, str], ...] | None = None
    """What the client announced in ``trainers``; None: the built-ins (older)."""
    bytes_received: int = 0
    bytes_sent: int = 0
    stats: Counter[str] = field(default_factory=Counter, repr=False)
    send_timeout_s: float = DEFAULT_SEND_TIMEOUT_S
    _send_lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    @property
    def connected(self) -> bool:
        """Return whether the client's socket is open."""
        return self.ws is not None and not self.ws.closed

    async def send(self, parts: Sequence[Part]) -> bool:
        """Send one message's WebSocket parts in order; False if they did not all go.

        The lock keeps the parts of one message together on the connection, and
        messages in the order their sends began. A message that has not left
        within ``send_timeout_s`` (the peer stopped reading) fails and drops the
        connection, as does a send cancelled midway: either would leave the
        peer with part of a message.
        """
        async with self._send_lock:
            ws = self.ws
            if ws is None or ws.closed:
                return False
            begun = 0
            try:
                async with asyncio.timeout(self.send_timeout_s):
                    for begun, part in enumerate(parts, 1):
                        await _send_part(ws, part)
                        self.bytes_sent += len(part)
                        self.stats["bytes_sent"] += len(part)
            except TimeoutError:
                self.stats["send_timeouts"] += 1
                limit = f"{self.send_timeout_s:g} s"
                self._drop(ws, f"timed out after {limit} at part {begun}/{len(parts)}")
                return False
            except (ConnectionError, RuntimeError) as e:
                logger.info("send to %s failed: %s", self.client_id, e)
                return False
            except asyncio.CancelledError:
                if not _asked_to_stop():
                    self._drop(ws, "failed: another writer of its socket was cancelled")
                    return False
                if 0 < begun < len(parts):
                    self._drop(ws, "was cancelled midway", logging.INFO)
                raise
        return True

    def _drop(
        self, ws: web.WebSocketResponse, why: str, level: int = logging.WARNING
    ) -> None:
        logger.log(
            level,
            "send to %s %s; dropping its connection",
            self.client_id,
            why,
            extra={"client_id": self.client_id},
        )
        drop_socket(ws)

    def to_dict(self) -> dict[str, Any]:
        """Return the client as ``GET /api/clients`` shows it."""
        return {
            "id": self.client_id,
            "name": self.hello.name,
            "status": self.status if self.connected else "disconnected",
            "task": self.hello.task,
            "num_examples": self.hello.num_examples,
            "schema": self.hello.schema,
            "address": self.address,
            "connected_since": self.connected_since,
            "last_seen": self.last_seen,
            "eligible": self.eligible,
            "note": self.note,
            "trainers": announced_trainers(self.trainers),
            "last_round": self.last_round,
        }


def announced_trainers(
    trainers: tuple[dict[str, str], ...] | None,
) -> list[dict[str, str | None]]:
    """Return a client's ``[{name, fingerprint}]``; older ones: the built-ins."""
    if trainers is None:
        return [{"name": name, "fingerprint": None} for name in sorted(BUILTIN)]
    return [{"name": t["name"], "fingerprint": t["fingerprint"] or None}
            for t in trainers]


async def _send_part(ws: web.WebSocketResponse, part: Part) -> None:
    if isinstance(part, str):
        await ws.send_str(part)
    else:
        await ws.send_bytes(part)  # type: ignore[arg-type]


class Registry:
    """Connected clients by id, plus the most recently departed ones.

    Args:
        events: where dashboards hear of joins, departures and status changes.
        send_timeout_s: the send deadline given to each client added.
    """

    def __init__(
        self, events: EventHub, *, send_timeout_s: float = DEFAULT_SEND_TIMEOUT_S
    ) -> None:
        self._events = events
        self._send_timeout_s = send_timeout_s
        self.test_swap_key = False  # TEST ONLY: fednet/server/tamper.py
        self._clients: OrderedDict[ClientId, ClientConn] = OrderedDict()
        self._departed: OrderedDict[ClientId, None] = OrderedDict()
        self.changed = asyncio.Event()

    def get(self, client_id: ClientId) -> ClientConn | None:
        """Return a client (connected or departed) by id."""
        return self._clients.get(client_id)

    def connected(self) -> list[ClientConn]:
        """Return the connected clients in the order they joined."""
        return [c for c in self._clients.values() if c.connected]

    def all(self) -> list[ClientConn]:
        """Return every known client, connected first."""
        return sorted(self._clients.values(), key=lambda c: not c.connected)

    async def close_client(
        self, client_id: ClientId, code: int, reason: bytes, timeout_s: float
    ) -> ClientConn | None:
        """Close a connected client's socket (a revoked site's); return it, if any.

        A peer that does not take the close within ``timeout_s`` is dropped.
        """
        conn = self._clients.get(client_id)
        if conn is None or conn.ws is None or conn.ws.closed:
            return None
        await close_socket(conn.ws, code, reason, timeout_s)
        return conn

    def add(self, conn: ClientConn) -> None:
        """Register a newly welcomed client (replacing a departed one of that id)."""
        conn.send_timeout_s = self._send_timeout_s
        self._clients.pop(conn.client_id, None)
        self._departed.pop(conn.client_id, None)
        self._clients[conn.client_id] = conn
        self._notify("client_joined", conn)

    def remove(self, conn: ClientConn) -> None:
        """Mark a client as departed, keeping it for the dashboard's history."""
        if self._clients.get(conn.client_id) is not conn:
            return
        conn.ws = None
        self._departed[conn.client_id] = None
        while len(self._departed) > MAX_DEPARTED:
            old, _ = self._departed.popitem(last=False)
            if (gone := self._clients.get(old)) is not None and not gone.connected:
                del self._clients[old]
        self._notify("client_left", conn)

    def updated(self, conn: ClientConn) -> None:
        """Tell the waits and dashboards a client's facts changed (its trainers)."""
        self._notify("client_status", conn)

    def set_status(self, conn: ClientConn, status: str) -> None:
        """Update a client's live status and tell the dashboards."""
        if conn.status != status:
            conn.status = status
            self._notify("client_status", conn)

    def _notify(self, kind: ClientChange, conn: ClientConn) -> None:
        self.changed.set()
        self.changed = asyncio.Event()
        self._events.publish(ClientChanged(kind, conn.to_dict()))


def ignored_result(conn: ClientConn, run_id: int) -> None:
    """Log a result for a run that is not the active one (it changes nothing)."""
    logger.warning("ignored a result of client %s for run %d, which is not active",
                   conn.client_id, run_id)
