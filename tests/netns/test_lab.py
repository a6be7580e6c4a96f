"""The lab's own guards, without namespaces: the address check, the netlink codec."""

from __future__ import annotations

import struct

import pytest

from tests.netns import nfqdelay
from tests.netns.lab import Node, checked


@pytest.mark.parametrize(
    "address", ["198.18.0.1", "198.19.255.254", "198.18.3.2/24", "198.18.0.0/15"]
)
def test_addresses_in_the_benchmarking_range_pass(address: str) -> None:
    """Hosts and networks inside 198.18.0.0/15 are returned unchanged."""
    assert checked(address) == address


@pytest.mark.parametrize(
    "address", ["198.17.255.255", "198.20.0.1", "10.0.0.1", "198.18.0.0/14", "::1"]
)
def test_addresses_outside_the_benchmarking_range_are_refused(address: str) -> None:
    """Anything else, a wider network or IPv6 included, raises ValueError."""
    with pytest.raises(ValueError, match="outside 198.18.0.0/15"):
        checked(address)


def test_nodes_get_a_subnet_each_inside_the_range() -> None:
    """Link k is 198.18.k.0/24: the router .1, the node .2."""
    node = Node("site-2", "ns", 2)
    assert (node.address, node.gateway, node.router_if) == (
        "198.18.2.2",
        "198.18.2.1",
        "r-site-2",
    )


def test_a_queued_packet_message_yields_its_id() -> None:
    """A NFQNL_MSG_PACKET as the kernel sends it parses back to its packet id."""
    header = struct.pack(">IHB", 4242, 0x0800, 1)  # id, hw_protocol, hook
    data = nfqdelay.nfq_message(
        nfqdelay.NFQNL_MSG_PACKET, 0, [(nfqdelay.NFQA_PACKET_HDR, header)]
    )
    data += nfqdelay.nfq_message(nfqdelay.NFQNL_MSG_PACKET, 0, [])  # no header
    parsed = [
        (kind & 0xFF, nfqdelay.packet_id(body))
        for kind, body in nfqdelay.messages(data)
    ]
    assert parsed == [(nfqdelay.NFQNL_MSG_PACKET, 4242), (0, None)]
