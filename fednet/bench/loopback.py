"""Measure loopback TCP throughput on 127.0.0.1 with plain sockets, bounded in time.

The figure is the ceiling a system could reach when it moves model bytes
between processes on this machine; the benchmarks report model bytes per
second against it. Run ``python benchmarks/loopback.py`` to print it.
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import threading
import time

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
SOCKET_BUFFER_BYTES = 4 << 20


def _drain(server: socket.socket, received: list[int], deadline: float) -> None:
    server.settimeout(max(deadline - time.monotonic(), 0.1) + 5.0)
    try:
        conn, _ = server.accept()
    except OSError:
        return
    with conn:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER_BYTES)
        conn.settimeout(10.0)
        buffer = bytearray(CHUNK_BYTES)
        view = memoryview(buffer)
        total = 0
        try:
            while True:
                n = conn.recv_into(view)
                if n == 0:
                    break
                total += n
        except OSError:
            pass
        received.append(total)


def measure_loopback(duration_s: float = 1.0, max_bytes: int = 8 << 30) -> float:
    """Send bytes over one loopback TCP connection and return bytes per second.

    The sender pushes 1 MiB chunks until ``duration_s`` has passed or
    ``max_bytes`` have been sent; the rate counts the bytes the receiver got
    until the sender closed, so it never overstates the link.

    Args:
        duration_s: how long to send, in seconds (kept between 0.05 and 10).
        max_bytes: upper bound of bytes sent.

    Returns:
        The measured throughput in bytes per second.

    Raises:
        OSError: if no loopback connection can be made.
    """
    duration_s = min(max(duration_s, 0.05), 10.0)
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        received: list[int] = []
        deadline = time.monotonic() + duration_s
        receiver = threading.Thread(
            target=_drain, args=(server, received, deadline), daemon=True
        )
        receiver.start()
        payload = memoryview(bytes(CHUNK_BYTES))
        sent = 0
        with socket.create_connection(("127.0.0.1", port), timeout=10.0) as client:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER_BYTES)
            start = time.perf_counter()
            send_until = time.monotonic() + duration_s
            while True:  # at least one chunk, however late the thread started
                client.sendall(payload)
                sent += CHUNK_BYTES
                if time.monotonic() >= send_until or sent >= max_bytes:
                    break
        receiver.join(timeout=15.0)
        elapsed = time.perf_counter() - start
    got = received[0] if received else 0
    rate = got / elapsed if elapsed > 0 else 0.0
    logger.info("loopback: %d bytes in %.3f s = %.2f GB/s", got, elapsed, rate / 1e9)
    return rate


def main(argv: list[str] | None = None) -> int:
    """Print the loopback throughput (GB/s, or JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=1.0, help="seconds")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    rate = measure_loopback(args.duration)
    if args.json:
        print(json.dumps({"loopback_bytes_per_s": rate}))
    else:
        print(f"loopback TCP 127.0.0.1: {rate / 1e9:.2f} GB/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
