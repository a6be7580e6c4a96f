"""What the dashboard feed costs: a subscribed ``/ws/dashboard`` socket, counted."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import aiohttp


class FeedMeter:
    """Read ``/ws/dashboard`` like a browser and count its messages and bytes.

    Start it with :meth:`start` before the workload, :meth:`stop` it after;
    :meth:`figures` then reports per message type, resync snapshots included
    (the first snapshot is not).

    Args:
        http: the session to connect with.
        url: ``ws://HOST:PORT/ws/dashboard``.
    """

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self._http = http
        self._url = url
        self.events: Counter[str] = Counter()
        self.bytes: Counter[str] = Counter()
        self.largest: Counter[str] = Counter()
        self.last_progress: dict[str, Any] | None = None
        self.last_run: dict[str, Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        """Connect and wait for the snapshot."""
        self._task = asyncio.create_task(self._read(), name="feed-meter")
        waiter = asyncio.create_task(self._ready.wait())
        await asyncio.wait((self._task, waiter), return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if self._task.done():
            self._task.result()  # raises what stopped it

    async def stop(self) -> None:
        """Stop reading (after a short grace period for a trailing event)."""
        await asyncio.sleep(0.6)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _read(self) -> None:
        async with self._http.ws_connect(self._url, max_msg_size=0) as ws:
            async for msg in ws:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    break
                data = json.loads(msg.data)
                kind = data["type"]
                if kind == "snapshot" and not self._ready.is_set():
                    self._ready.set()  # the first; later ones are resyncs
                    continue
                size = len(msg.data.encode())
                self.events[kind] += 1
                self.bytes[kind] += size
                self.largest[kind] = max(self.largest[kind], size)
                if kind == "round_progress":
                    self.last_progress = data["progress"]
                elif kind == "run_status":
                    self.last_run = data["run"]

    def figures(self, results: int) -> dict[str, Any]:
        """Return the feed's figures, per result where ``results`` is the divisor.

        Args:
            results: how many client results the measured rounds received.
        """
        per = max(results, 1)
        return {
            "feed_events": dict(self.events),
            "feed_bytes": dict(self.bytes),
            "feed_progress_bytes_max": self.largest["round_progress"] or None,
            "feed_progress_per_result": self.events["round_progress"] / per,
            "feed_bytes_per_result": sum(self.bytes.values()) / per,
            "feed_last_progress": self.last_progress,
            "feed_last_run": self.last_run,
        }
