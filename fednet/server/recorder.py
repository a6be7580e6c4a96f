"""What a run's driver writes down: rounds, checkpoints, status; off the event loop."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from fednet.machine import RoundCheckpoint
from fednet.records import RoundFinished, RoundRecord, round_score
from fednet.runmetrics import stored_selection
from fednet.server.events import EventHub, RoundCompleted
from fednet.server.registry import Registry
from fednet.server.store import Store
from fednet.views import RoundView


class RunRecorder:
    """Persist one run's progress; each write runs in a worker thread (fsync).

    Args:
        run_id: the run.
        store: run history and checkpoints.
        registry: clients, whose last round the dashboard shows.
        events: where a recorded round is announced.
    """

    def __init__(
        self, run_id: int, store: Store, registry: Registry, events: EventHub
    ) -> None:
        self.run_id = run_id
        self._store = store
        self._registry = registry
        self._events = events
        self._best: float | None = None  # the best score recorded, once read
        self._metric = "accuracy"  # the run's selection_metric, once read

    async def mark_running(self, schema: dict[str, Any] | None) -> None:
        """Record that the run started, with the data schema it trains on."""
        now = time.time()
        await asyncio.to_thread(self._store.mark_running, self.run_id, schema, now)

    async def end(self, status: str, error: str | None) -> None:
        """Record how the run ended."""
        await asyncio.to_thread(
            self._store.end_run, self.run_id, status, error, time.time()
        )

    async def round_finished(self, event: RoundFinished, duration_s: float) -> None:
        """Checkpoint and record a round, then tell clients' rows and dashboards."""
        record = event.record
        view = await asyncio.to_thread(self._commit, event, duration_s)
        for cid, metrics in record.client_metrics.items():
            conn = self._registry.get(cid)
            if conn is not None:
                conn.last_round = {"server_round": record.server_round, **metrics}
        self._events.publish(RoundCompleted(self.run_id, view))

    def _commit(self, event: RoundFinished, duration_s: float) -> RoundView:
        """Write the checkpoint, then the round, then drop older checkpoints.

        The checkpoint is the model and, for a strategy that has one (FedAdam's
        moments...), its state: two files named after the round, each written
        atomically and fsynced before the round is committed. A round more
        accurate than any before is also kept as the run's best model. A resumed run
        loads both of the last recorded round, so a crash at any point leaves
        a model and a state that belong together.
        """
        server_round = event.record.server_round
        if isinstance(event, RoundCheckpoint) and event.server_state is not None:
            self._store.save_server_state(
                self.run_id, server_round, event.server_state
            )
        self._store.save_model(self.run_id, server_round, event.parameters)
        best = self._is_best(event.record)
        if best:
            self._store.keep_best(self.run_id, server_round)
        view = self._store.record_round(
            self.run_id, event.record, duration_s, time.time()
        )
        self._store.prune_models(self.run_id, server_round)
        if best:
            self._store.prune_best(self.run_id, server_round)
        return view

    def _is_best(self, record: RoundRecord) -> bool:
        """Return whether a round beats every recorded one (ties: the earlier).

        Rounds are compared by the run's ``selection_metric``.
        """
        if self._best is None:
            run = self._store.get_run(self.run_id)
            rounds = run.rounds or () if run is not None else ()
            if run is not None:
                self._metric = stored_selection(run.config, run.schema)
            scores = [s for r in rounds if (s := round_score(r, self._metric))
                      is not None]
            self._best = max(scores, default=-math.inf)
        value = record.score(self._metric)
        if value is None or value <= self._best:
            return False
        self._best = value
        return True
