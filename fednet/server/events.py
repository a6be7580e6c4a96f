"""Typed server events (clients, rounds, runs) and their fan-out to subscribers."""

from __future__ import annotations

import asyncio
import logging
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal, Union

from fednet.views import ProgressView, RoundView, RunView

logger = logging.getLogger(__name__)

QUEUE_SIZE = 1000
Key = tuple[Any, ...]
"""What identifies the events that supersede one another: ``("client", id)``."""
FEED_INTERVAL_S = 0.25
"""How often a dashboard hears of one run's progress or of one client, at most."""

ClientChange = Literal["client_joined", "client_left", "client_status"]


@dataclass(frozen=True)
class ClientChanged:
    """A client joined, left or changed status; ``client`` as the API shows it."""

    type: ClientChange
    client: dict[str, Any]

    def payload(self) -> dict[str, Any]:
        """Return the event's JSON members besides ``type`` and ``seq``."""
        return {"client": self.client}


@dataclass(frozen=True)
class RoundProgress:
    """The round in progress moved on (a result arrived, a phase began)."""

    progress: ProgressView | None
    type: Literal["round_progress"] = "round_progress"

    def payload(self) -> dict[str, Any]:
        """Return the event's JSON members besides ``type`` and ``seq``."""
        return {"progress": _progress(self.progress)}


@dataclass(frozen=True)
class RunStatus:
    """A run's status changed (queued, running, or how it ended)."""

    run: RunView | None
    progress: ProgressView | None
    type: Literal["run_status"] = "run_status"

    def payload(self) -> dict[str, Any]:
        """Return the event's JSON members besides ``type`` and ``seq``."""
        run = self.run.to_dict() if self.run is not None else None
        return {"run": run, "progress": _progress(self.progress)}


@dataclass(frozen=True)
class RoundCompleted:
    """A round was recorded; ``round`` is its row as the API shows it."""

    run_id: int
    round: RoundView
    type: Literal["round_finished"] = "round_finished"

    def payload(self) -> dict[str, Any]:
        """Return the event's JSON members besides ``type`` and ``seq``."""
        return {"run_id": self.run_id, "round": self.round.to_dict()}


ServerEvent = Union[ClientChanged, RoundProgress, RunStatus, RoundCompleted]


@dataclass(frozen=True)
class Published:
    """An event with its sequence number, as subscribers receive it."""

    seq: int
    event: ServerEvent

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"type": ..., "seq": n, ...}``: what dashboards receive."""
        return {"type": self.event.type, "seq": self.seq, **self.event.payload()}


def _progress(progress: ProgressView | None) -> dict[str, Any] | None:
    """Return progress as the feed shows it: counts, never the lists of names."""
    return progress.to_dict(names=False) if progress is not None else None


class Subscription:
    """One subscriber's pending events, in ``seq`` order, superseded ones left out.

    An event that a later one supersedes (:func:`coalesce_key`: a run's
    progress, a client's row) is replaced, so a burst of them costs one entry
    per run or client however long the burst. Only the other events count
    against ``limit``: a subscriber that falls that many behind is dropped (it
    then receives None) and is expected to resynchronise from a snapshot
    rather than make the server buffer without bound.

    Args:
        limit: how many events that are never superseded may wait.
    """

    def __init__(self, limit: int = QUEUE_SIZE) -> None:
        self._events: OrderedDict[Key, Published | None] = OrderedDict()
        self._kept = 0
        self._limit = limit
        self._ready = asyncio.Event()

    def put(self, published: Published) -> bool:
        """Queue an event; return False, queueing nothing, if over the limit."""
        event, key = published.event, coalesce_key(published.event)
        if key is None:
            if self._kept >= self._limit:
                return False
            key = ("seq", published.seq)
            self._kept += 1
        else:
            self._events.pop(key, None)  # re-queued at the end, in seq order
        if isinstance(event, RunStatus) and event.run is not None:
            self._events.pop(("progress", event.run.id), None)
        self._events[key] = published
        self._ready.set()
        return True

    def close(self) -> None:
        """Discard what waits; the subscriber next receives None."""
        self._events.clear()
        self._events[("closed",)] = None
        self._ready.set()

    def empty(self) -> bool:
        """Return whether nothing waits."""
        return not self._events

    def get_nowait(self) -> Published | None:
        """Return the oldest waiting event (None once closed).

        Raises:
            KeyError: if nothing waits.
        """
        key, published = self._events.popitem(last=False)
        if key[0] == "seq":
            self._kept -= 1
        if published is None:
            self._events[key] = None  # closed for good
        return published

    async def get(self) -> Published | None:
        """Wait for the oldest waiting event (None once closed)."""
        while not self._events:
            self._ready.clear()
            await self._ready.wait()
        return self.get_nowait()


class EventHub:
    """Publish events to every subscriber's bounded :class:`Subscription`."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self.seq = 0

    def subscribe(self) -> Subscription:
        """Return a new subscription that receives every event from now on."""
        subscription = Subscription(QUEUE_SIZE)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop delivering events to a subscription."""
        self._subscriptions.discard(subscription)

    def publish(self, event: ServerEvent) -> None:
        """Number the event and deliver it to every subscriber."""
        self.seq += 1
        published = Published(self.seq, event)
        for subscription in list(self._subscriptions):
            if not subscription.put(published):
                logger.warning("event subscriber too slow; dropping its queue")
                self._subscriptions.discard(subscription)
                subscription.close()


def coalesce_key(event: ServerEvent) -> Key | None:
    """Return what a later event of the same key supersedes, or None if nothing.

    Progress is a state (the latest wins), as is a client's row: the page
    draws ``client_joined``, ``client_status`` and ``client_left`` alike.
    Run status and finished rounds are never coalesced.
    """
    if isinstance(event, RoundProgress):
        return ("progress", event.progress.run_id if event.progress else None)
    if isinstance(event, ClientChanged):
        return ("client", event.client.get("id"))
    return None


class FeedBatch:
    """One dashboard's pending events: the latest per key, sent in ``seq`` order.

    A coalesced event (see :func:`coalesce_key`) that comes when nothing was
    sent for ``interval_s`` is due at once; others wait until ``interval_s``
    after the last send, so each key is sent at most once per interval and
    the latest value always goes out. Any other event is due at once and
    takes the batch with it, so events leave in the order they were published
    (pages drop an event whose ``seq`` is not above the last one's).

    Args:
        interval_s: the shortest time between two sends of coalesced events.
    """

    def __init__(self, interval_s: float = FEED_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._pending: dict[Key, Published] = {}
        self._urgent = False
        self._last_sent = -math.inf
        self._first_at = math.inf

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, published: Published, now: float) -> None:
        """Hold an event, replacing the pending one it supersedes."""
        key = coalesce_key(published.event)
        event = published.event
        if isinstance(event, RunStatus) and event.run is not None:
            self._pending.pop(("progress", event.run.id), None)
        if key is None:
            key, self._urgent = ("seq", published.seq), True
        elif not self._pending:
            self._first_at = now
        self._pending.pop(key, None)  # re-inserted: the dict keeps seq order
        self._pending[key] = published

    def due(self) -> float | None:
        """Return when the batch should be sent (loop time), or None if empty."""
        if not self._pending:
            return None
        if self._urgent:
            return -math.inf
        return max(self._first_at, self._last_sent + self.interval_s)

    def take(self, now: float) -> list[Published]:
        """Return the pending events in ``seq`` order and empty the batch."""
        taken = list(self._pending.values())
        self._pending.clear()
        self._urgent, self._last_sent = False, now
        return taken
