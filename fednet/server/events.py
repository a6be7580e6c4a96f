"""Typed server events (clients, rounds, runs) and their fan-out to subscribers."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Literal, Union

from fednet.views import ProgressView, RoundView, RunView

logger = logging.getLogger(__name__)

QUEUE_SIZE = 1000

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
    return progress.to_dict() if progress is not None else None


class EventHub:
    """Publish events to every subscriber's bounded queue.

    A subscriber too slow to keep up loses its queue (it receives None) and
    is expected to resynchronise from a snapshot rather than make the server
    buffer without bound.
    """

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[Published | None]] = set()
        self.seq = 0

    def subscribe(self) -> asyncio.Queue[Published | None]:
        """Return a new queue that receives every event from now on."""
        queue: asyncio.Queue[Published | None] = asyncio.Queue(QUEUE_SIZE)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Published | None]) -> None:
        """Stop delivering events to a queue."""
        self._queues.discard(queue)

    def publish(self, event: ServerEvent) -> None:
        """Number the event and deliver it to every subscriber."""
        self.seq += 1
        published = Published(self.seq, event)
        for queue in list(self._queues):
            try:
                queue.put_nowait(published)
            except asyncio.QueueFull:
                logger.warning("dashboard subscriber too slow; dropping its queue")
                self._queues.discard(queue)
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(None)
