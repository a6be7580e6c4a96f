"""A small network lab: namespaces joined by veth pairs through a router namespace.

Every node (the coordinator, each client) gets a namespace of its own and one
veth pair to the router namespace: ``eth0`` on its side, ``r-NODE`` on the
router's. Link ``k`` uses 198.18.k.0/24: the router is .1 and the node .2, and
the node routes 198.18.0.0/15 (nothing wider) via the router. Nothing is
created in the initial namespace: both ends of each pair are created directly
inside their namespaces, so names only need to be unique per run.

Every address the lab assigns or targets goes through :func:`checked`, which
refuses anything outside 198.18.0.0/15 (RFC 2544 benchmarking space).
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import shutil
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tests.e2e.e2eutil import Api

LAB_NETWORK = ipaddress.IPv4Network("198.18.0.0/15")
ROUTER_IF_PREFIX = "r-"
_CLONE_NEWNET = 0x40000000
_LIBC = ctypes.CDLL(None, use_errno=True)


def checked(address: str) -> str:
    """Return ``address`` (host or host/prefix) if it lies in 198.18.0.0/15.

    Raises:
        ValueError: for any address outside the lab's network.
    """
    interface = ipaddress.ip_interface(address)
    network = interface.network
    if isinstance(network, ipaddress.IPv4Network) and network.subnet_of(LAB_NETWORK):
        return address
    raise ValueError(f"{address} is outside {LAB_NETWORK}: the lab may not use it")


def sh(*cmd: str, ns: str | None = None, check: bool = True) -> str:
    """Run a command (inside namespace ``ns`` if given); return its stdout."""
    argv = [tool(cmd[0]), *cmd[1:]]
    if ns:
        argv = [tool("ip"), "netns", "exec", ns, *argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr}")
    return done.stdout


def tool(name: str) -> str:
    """Return the path of a system tool, looking in /usr/sbin and /sbin too."""
    path = f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"
    return shutil.which(name, path=path) or name


def _enter_netns(name: str) -> None:
    """Move the calling thread into network namespace ``name``."""
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if _LIBC.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({name}): {os.strerror(err)}")
    finally:
        os.close(fd)


class NetnsApi(Api):
    """The coordinator's API, reached from a thread inside its namespace.

    The test process stays in the initial namespace; only this one worker
    thread joins the coordinator's, so no address is needed outside the lab.
    """

    def __init__(self, base: str, netns: str) -> None:
        super().__init__(base)
        self._thread = ThreadPoolExecutor(
            1, f"api-{netns}", initializer=_enter_netns, initargs=(netns,)
        )

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        """Send one request from inside the coordinator's namespace."""
        return self._thread.submit(super().request, method, path, body).result()

    def close(self) -> None:
        """Stop the worker thread."""
        self._thread.shutdown(wait=False)


@dataclass
class Node:
    """One namespace with its link to the router."""

    name: str
    netns: str
    index: int
    router_if: str = field(init=False)
    address: str = field(init=False)
    gateway: str = field(init=False)

    def __post_init__(self) -> None:
        self.router_if = f"{ROUTER_IF_PREFIX}{self.name}"
        self.address = checked(f"198.18.{self.index}.2")
        self.gateway = checked(f"198.18.{self.index}.1")


class Lab:
    """Namespaces, links and faults of one test; :meth:`close` removes them all.

    Args:
        prefix: unique per test run; every namespace name starts with it.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.router = f"{prefix}-rtr"
        self.nodes: dict[str, Node] = {}
        self.created: list[str] = []
        self._add_netns(self.router)
        sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=self.router)

    def _add_netns(self, netns: str) -> None:
        sh("ip", "netns", "add", netns)
        self.created.append(netns)
        sh("ip", "-n", netns, "link", "set", "lo", "up")

    def add_node(self, name: str) -> Node:
        """Create a namespace for ``name`` and link it to the router."""
        node = Node(name, f"{self.prefix}-{name}", len(self.nodes))
        self._add_netns(node.netns)
        sh("ip", "link", "add", "eth0", "netns", node.netns, "type", "veth",
           "peer", "name", node.router_if, "netns", self.router)  # fmt: skip
        for netns, dev, addr in (
            (node.netns, "eth0", node.address),
            (self.router, node.router_if, node.gateway),
        ):
            sh("ip", "-n", netns, "addr", "add", f"{checked(addr)}/24", "dev", dev)
            sh("ip", "-n", netns, "link", "set", dev, "up")
        route = checked(str(LAB_NETWORK))
        sh("ip", "-n", node.netns, "route", "add", route, "via", node.gateway)
        self.nodes[name] = node
        return node

    def cut(self, name: str) -> None:
        """Pull the cable: take the router's end of the node's link down."""
        sh("ip", "-n", self.router, "link", "set", self.nodes[name].router_if, "down")

    def restore(self, name: str) -> None:
        """Plug the cable back in (the router's connected route comes back)."""
        sh("ip", "-n", self.router, "link", "set", self.nodes[name].router_if, "up")

    def drop_randomly(self, name: str, probability: float) -> None:
        """Drop that share of the packets in and out of the node's ``eth0``.

        A counting rule (no target) before each DROP rule counts the packets
        offered, so :meth:`loss_counts` can tell what share was dropped.
        """
        netns = self.nodes[name].netns
        for chain, side in (("INPUT", "-i"), ("OUTPUT", "-o")):
            sh("iptables", "-w", "-A", chain, side, "eth0", ns=netns)
            sh("iptables", "-w", "-A", chain, side, "eth0", "-m", "statistic",
               "--mode", "random", "--probability", f"{probability}", "-j", "DROP",
               ns=netns)  # fmt: skip

    def loss_counts(self, name: str) -> tuple[int, int]:
        """Return (packets dropped, packets offered) on the node's ``eth0``."""
        dropped = offered = 0
        for chain in ("INPUT", "OUTPUT"):
            table = sh("iptables", "-w", "-nvxL", chain, ns=self.nodes[name].netns)
            for line in table.splitlines():
                fields = line.split()
                if fields and fields[0].isdigit():
                    if "DROP" in fields:
                        dropped += int(fields[0])
                    else:
                        offered += int(fields[0])
        return dropped, offered

    def queue_forwarded(self, name: str, queue: int) -> None:
        """Hand every packet the router forwards to or from a node to ``queue``."""
        dev = self.nodes[name].router_if
        for side in ("-i", "-o"):
            sh("iptables", "-w", "-A", "FORWARD", side, dev, "-j", "NFQUEUE",
               "--queue-num", str(queue), ns=self.router)  # fmt: skip

    def netem(self, name: str, delay_ms: int, loss: float) -> None:
        """Delay and drop packets on both ends of the node's link with netem."""
        node = self.nodes[name]
        for netns, dev in ((node.netns, "eth0"), (self.router, node.router_if)):
            sh("tc", "qdisc", "add", "dev", dev, "root", "netem", "delay",
               f"{delay_ms}ms", "loss", f"{loss * 100:g}%", ns=netns)  # fmt: skip

    def has_netem(self) -> bool:
        """Probe whether the kernel has the netem qdisc (it may be built without)."""
        dev = next(iter(self.nodes.values())).router_if
        try:
            sh("tc", "qdisc", "add", "dev", dev, "root", "netem", "delay", "1ms",
               ns=self.router)  # fmt: skip
        except (RuntimeError, OSError):
            return False
        sh("tc", "qdisc", "del", "dev", dev, "root", ns=self.router)
        return True

    def connect_time(self, name: str, target: str, port: int) -> float:
        """Return the seconds a TCP connect from a node to ``target:port`` takes."""

        def dial() -> float:
            started = time.monotonic()
            with socket.create_connection((checked(target), port), timeout=20):
                return time.monotonic() - started

        netns = self.nodes[name].netns
        with ThreadPoolExecutor(1, initializer=_enter_netns, initargs=(netns,)) as t:
            return t.submit(dial).result()

    def close(self) -> None:
        """Delete every namespace this lab created (and so every link in them)."""
        errors = []
        for netns in reversed(self.created):
            done = subprocess.run(
                ["ip", "netns", "del", netns], capture_output=True, text=True
            )
            if done.returncode != 0:
                errors.append(f"{netns}: {done.stderr.strip()}")
        self.created.clear()
        if errors:
            raise RuntimeError("could not delete namespaces: " + "; ".join(errors))
