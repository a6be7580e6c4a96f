"""Clients known to the coordinator: live connections and recently departed ones."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from fednet.protocol import Hello
from fednet.server.events import ClientChange, ClientChanged, EventHub
from fednet.typing import ClientId

logger = logging.getLogger(__name__)

MAX_DEPARTED = 1000


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
    bytes_received: int = 0
    bytes_sent: int = 0
    stats: Counter[str] = field(default_factory=Counter, repr=False)
    _send_lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    @property
    def connected(self) -> bool:
        """Return whether the client's socket is open."""
        return self.ws is not None and not self.ws.closed

    async def send(self, parts: Sequence[str | bytes | bytearray | memoryview]) -> bool:
        """Send one message's WebSocket parts in order; False if the socket is gone.

        The lock keeps the parts of one message together on the connection.
        """
        if self.ws is None or self.ws.closed:
            return False
        size = 0
        try:
            async with self._send_lock:
                for part in parts:
                    if isinstance(part, str):
                        await self.ws.send_str(part)
                    else:
                        await self.ws.send_bytes(part)  # type: ignore[arg-type]
                    size += len(part)
        except (ConnectionError, RuntimeError) as e:
            logger.info("send to %s failed: %s", self.client_id, e)
            return False
        finally:
            self.bytes_sent += size
            self.stats["bytes_sent"] += size
        return True

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
            "last_round": self.last_round,
        }


class Registry:
    """Connected clients by id, plus the most recently departed ones."""

    def __init__(self, events: EventHub) -> None:
        self._events = events
        self._clients: OrderedDict[ClientId, ClientConn] = OrderedDict()
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

    def add(self, conn: ClientConn) -> None:
        """Register a newly welcomed client (replacing a departed one of that id)."""
        self._clients.pop(conn.client_id, None)
        self._clients[conn.client_id] = conn
        self._notify("client_joined", conn)

    def remove(self, conn: ClientConn) -> None:
        """Mark a client as departed, keeping it for the dashboard's history."""
        if self._clients.get(conn.client_id) is not conn:
            return
        conn.ws = None
        departed = [c for c in self._clients.values() if not c.connected]
        for old in departed[: max(0, len(departed) - MAX_DEPARTED)]:
            del self._clients[old.client_id]
        self._notify("client_left", conn)

    def set_status(self, conn: ClientConn, status: str) -> None:
        """Update a client's live status and tell the dashboards."""
        if conn.status != status:
            conn.status = status
            self._notify("client_status", conn)

    def _notify(self, kind: ClientChange, conn: ClientConn) -> None:
        self.changed.set()
        self.changed = asyncio.Event()
        self._events.publish(ClientChanged(kind, conn.to_dict()))
