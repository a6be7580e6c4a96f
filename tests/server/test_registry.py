"""The registry keeps every connected client and the last MAX_DEPARTED departed."""

from __future__ import annotations

from typing import Any

from fednet.protocol import Hello
from fednet.server.events import EventHub
from fednet.server.registry import MAX_DEPARTED, ClientConn, Registry
from fednet.typing import ClientId


class _OpenSocket:
    closed = False


def _conn(name: str) -> ClientConn:
    socket: Any = _OpenSocket()
    hello = Hello(name, "i", 1, "synthetic")
    return ClientConn(ClientId(name), hello, socket, "198.18.0.2", 0.0, 0.0)


async def test_departed_clients_beyond_the_bound_are_forgotten_oldest_first() -> None:
    """After 1.5x MAX_DEPARTED departures only the newest MAX_DEPARTED remain."""
    registry = Registry(EventHub())
    total = MAX_DEPARTED * 3 // 2
    conns = [_conn(f"site-{i}") for i in range(total)]
    for conn in conns:
        registry.add(conn)
    staying = _conn("staying")
    registry.add(staying)
    for conn in conns:
        registry.remove(conn)
    kept = {c.client_id for c in registry.all()}
    assert len(kept) == MAX_DEPARTED + 1 and ClientId("staying") in kept
    assert kept - {"staying"} == {c.client_id for c in conns[-MAX_DEPARTED:]}
    assert registry.connected() == [staying]


async def test_a_departed_client_that_returns_is_not_forgotten_later() -> None:
    """A client back under its name is never evicted by later departures."""
    registry = Registry(EventHub())
    first = _conn("returning")
    registry.add(first)
    registry.remove(first)
    back = _conn("returning")
    registry.add(back)
    others = [_conn(f"site-{i}") for i in range(MAX_DEPARTED + 5)]
    for conn in others:
        registry.add(conn)
        registry.remove(conn)
    assert registry.get(ClientId("returning")) is back
    assert len(registry.all()) == MAX_DEPARTED + 1
