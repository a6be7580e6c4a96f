"""Hold every packet of an NFQUEUE queue for a fixed time, then accept it.

A stand-in for ``tc qdisc ... netem delay`` on kernels built without
``sch_netem``: an iptables rule (``-j NFQUEUE --queue-num N``) hands packets to
this process, which speaks the nfnetlink_queue protocol over a plain netlink
socket (standard library only, nothing to compile). Only packet metadata is
copied to user space; each packet stays in the kernel until its verdict, so the
delay is real on the wire path, in order, and TCP sees it like any link delay.

Run it inside the namespace whose rules queue the packets::

    ip netns exec NS python tests/netns/nfqdelay.py --queue 0 --delay-ms 200

It prints ``ready`` once bound, and the packet count when it gets SIGTERM.
"""

from __future__ import annotations

import argparse
import collections
import errno
import select
import signal
import socket
import struct
import sys
import time
from collections.abc import Iterator
from types import FrameType

NETLINK_NETFILTER = 12
NLMSG_ERROR = 2
NLM_F_REQUEST = 1
NLM_F_ACK = 4
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = 0
NFQNL_MSG_CONFIG = 2
NFQNL_MSG_VERDICT_BATCH = 3
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQA_CFG_QUEUE_MAXLEN = 3
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NF_ACCEPT = 1
SO_RCVBUFFORCE = 33  # Linux; the socket module does not name it
QUEUE_MAXLEN = 8192
_NLMSGHDR = struct.Struct("=IHHII")
_NLATTR = struct.Struct("=HH")


def nfq_message(
    kind: int, queue: int, attrs: list[tuple[int, bytes]], flags: int = NLM_F_REQUEST
) -> bytes:
    """Return one nfnetlink_queue message: header, nfgenmsg and attributes."""
    payload = struct.pack(">BBH", socket.AF_UNSPEC, 0, queue)
    for attr, data in attrs:
        length = _NLATTR.size + len(data)
        payload += _NLATTR.pack(length, attr) + data + b"\0" * (-length % 4)
    msg_type = (NFNL_SUBSYS_QUEUE << 8) | kind
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(payload), msg_type, flags, 0, 0) + (
        payload
    )


def messages(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Yield the type and body (after the netlink header) of each message."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, msg_type, _, _, _ = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size:
            return
        yield msg_type, data[offset + _NLMSGHDR.size : offset + length]
        offset += (length + 3) & ~3


def packet_id(body: bytes) -> int | None:
    """Return the packet id of a NFQNL_MSG_PACKET body (None if it has none)."""
    offset = 4  # the nfgenmsg
    while offset + _NLATTR.size <= len(body):
        length, attr = _NLATTR.unpack_from(body, offset)
        if length < _NLATTR.size:
            return None
        if attr & 0x3FFF == NFQA_PACKET_HDR:
            (pid,) = struct.unpack_from(">I", body, offset + _NLATTR.size)
            return int(pid)
        offset += (length + 3) & ~3
    return None


def bind(sock: socket.socket, queue: int) -> None:
    """Bind ``queue`` to this socket, metadata only; raise OSError if refused."""
    config = [
        [(NFQA_CFG_CMD, struct.pack(">BBH", NFQNL_CFG_CMD_BIND, 0, 0))],
        [
            (NFQA_CFG_PARAMS, struct.pack(">IB", 0, NFQNL_COPY_META)),
            (NFQA_CFG_QUEUE_MAXLEN, struct.pack(">I", QUEUE_MAXLEN)),
        ],
    ]
    flags = NLM_F_REQUEST | NLM_F_ACK
    for attrs in config:
        sock.send(nfq_message(NFQNL_MSG_CONFIG, queue, attrs, flags))
        for msg_type, body in messages(sock.recv(65536)):
            if msg_type == NLMSG_ERROR:
                (code,) = struct.unpack_from("=i", body)
                if code != 0:
                    raise OSError(-code, f"nfqueue config: {errno.errorcode[-code]}")


def serve(queue: int, delay_s: float) -> int:
    """Delay the packets of ``queue`` until SIGTERM; return how many passed."""
    stop = False

    def on_term(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    held: collections.deque[tuple[float, int]] = collections.deque()
    passed = 0
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER) as sock:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
        sock.bind((0, 0))
        bind(sock, queue)
        print("ready", flush=True)
        while not stop:
            wait = max(0.0, held[0][0] - time.monotonic()) if held else 0.5
            try:
                readable, _, _ = select.select([sock], [], [], wait)
                data = sock.recv(1 << 20) if readable else b""
            except InterruptedError:
                continue
            except OSError as e:  # ENOBUFS: notices lost; batch verdicts cover them
                if e.errno != errno.ENOBUFS:
                    raise
                data = b""
            now = time.monotonic()
            for msg_type, body in messages(data):
                pid = packet_id(body) if msg_type & 0xFF == NFQNL_MSG_PACKET else None
                if pid is not None:
                    held.append((now + delay_s, pid))
            last = None
            while held and held[0][0] <= now:
                last = held.popleft()[1]
                passed += 1
            if last is not None:  # accepts every held packet up to this id
                verdict = struct.pack(">II", NF_ACCEPT, last)
                sock.send(
                    nfq_message(
                        NFQNL_MSG_VERDICT_BATCH, queue, [(NFQA_VERDICT_HDR, verdict)]
                    )
                )
    return passed


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and delay packets until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queue", type=int, default=0)
    parser.add_argument("--delay-ms", type=float, default=200.0)
    args = parser.parse_args(argv)
    passed = serve(args.queue, args.delay_ms / 1000)
    print(f"passed {passed} packets", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
