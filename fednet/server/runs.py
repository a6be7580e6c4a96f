"""Launch, stop and resume runs; hand client inputs to the active run's driver."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter

from fednet.config import RunConfig
from fednet.exceptions import ConfigError, FednetError
from fednet.params import max_frame_length
from fednet.protocol import Error, EvaluateResult, FitResult, InitResult
from fednet.secagg.wire import SecaggInput
from fednet.server.driver import RunDriver
from fednet.server.events import EventHub
from fednet.server.registry import ClientConn, Registry, ignored_result
from fednet.server.store import Store
from fednet.views import ProgressView

logger = logging.getLogger(__name__)


class RunConflict(FednetError):
    """A run is already active."""


class RunManager:
    """Start at most one run at a time and delegate to its driver.

    The driver owns everything about its run; the manager only knows which
    driver, if any, is active.
    """

    def __init__(
        self, store: Store, registry: Registry, events: EventHub, stats: Counter[str]
    ) -> None:
        self._store = store
        self._registry = registry
        self._events = events
        self._stats = stats
        self._driver: RunDriver | None = None
        self._launching = False

    @property
    def active(self) -> RunDriver | None:
        """Return the driver of the queued or running run, if any."""
        driver = self._driver
        return driver if driver is not None and not driver.ended else None

    async def launch(self, config: RunConfig) -> int:
        """Create a run and start driving it.

        Raises:
            RunConflict: if another run is queued or running.
        """
        if self.active is not None:
            raise RunConflict(f"run {self.active.run_id} is still active")
        if self._launching:
            raise RunConflict("another run is being launched")
        self._launching = True
        try:
            run_id = await asyncio.to_thread(
                self._store.create_run, config.to_dict(), time.time()
            )
        finally:
            self._launching = False
        self._start(run_id, config, completed_rounds=0)
        return run_id

    def resume_unfinished(self) -> None:
        """Continue the newest run a previous server process left unfinished.

        Older unfinished runs, and one whose stored config no longer
        validates, are marked failed with the reason.
        """
        runs = self._store.unfinished_runs()
        for stale in runs[:-1]:
            self._fail(stale.id, "superseded by a newer run")
        if not runs or self.active is not None:
            return
        run = runs[-1]
        try:
            config = RunConfig.from_dict(run.config)
        except ConfigError as e:
            self._fail(run.id, f"cannot resume: invalid stored config: {e}")
            return
        logger.info(
            "run: resuming run %d after round %d", run.id, run.completed_rounds
        )
        self._start(run.id, config, run.completed_rounds)

    async def stop(self, run_id: int) -> bool:
        """Stop the run if it is the active one; return whether it was."""
        driver = self.active
        if driver is None or driver.run_id != run_id:
            return False
        await driver.stop()
        return True

    async def close(self) -> None:
        """Stop driving without ending the run (it resumes on restart)."""
        if self._driver is not None:
            await self._driver.shutdown()

    def progress(self) -> ProgressView | None:
        """Return the active run's live progress, or None."""
        driver = self.active
        return driver.progress() if driver is not None else None

    def _start(self, run_id: int, config: RunConfig, completed_rounds: int) -> None:
        self._driver = RunDriver(
            run_id,
            config,
            completed_rounds,
            store=self._store,
            registry=self._registry,
            events=self._events,
            stats=self._stats,
        )
        self._driver.start()

    def _fail(self, run_id: int, reason: str) -> None:
        logger.warning("run: %d failed: %s", run_id, reason)
        self._store.end_run(run_id, "failed", reason, time.time())

    # -- inputs from client connections ----------------------------------------

    def client_joined(self, conn: ClientConn) -> None:
        """Tell the active run a client joined."""
        if self.active is not None:
            self.active.client_joined(conn)

    def client_left(self, conn: ClientConn) -> None:
        """Tell the active run a client left."""
        if self.active is not None:
            self.active.client_left(conn)

    def error_received(self, conn: ClientConn, msg: Error) -> None:
        """Hand the active run a client's error about it.

        A client that cannot answer the round in progress is dropped from it
        (the round need not wait for it until ``round_timeout_s``); one whose
        trainer cannot serve the run is ineligible for the rest of it.
        """
        driver = self.active
        if driver is not None and msg.run_id == driver.run_id:
            driver.error_received(conn, msg)

    def init_received(self, conn: ClientConn, msg: InitResult) -> None:
        """Hand the active run a site's initial parameters."""
        if self.active is not None and msg.run_id == self.active.run_id:
            self.active.trainer.init_received(conn, msg)
        else:
            ignored_result(conn, msg.run_id)

    async def update_received(self, conn: ClientConn, msg: FitResult) -> None:
        """Hand a ``fit_result`` to the active run; return once it was folded."""
        if self.active is not None:
            await self.active.update_received(conn, msg)
        else:
            ignored_result(conn, msg.run_id)

    def secagg_received(self, conn: ClientConn, msg: SecaggInput) -> None:
        """Hand a secure-aggregation stage message to the active run."""
        if self.active is not None:
            self.active.secagg_received(conn, msg)
        else:
            ignored_result(conn, msg.run_id)

    def upload_allowance(
        self, conn: ClientConn, run_id: int, server_round: int
    ) -> int | None:
        """Return the largest ``fit_result`` the active run awaits from a client.

        That is the frame of the global model's shapes with the longest header
        allowed; None when the run, its round or its training phase is another,
        or the client is not (or no longer) awaited.
        """
        driver = self.active
        progress = driver.progress() if driver is not None else None
        setup = driver.setup if driver is not None else None
        # In async mode each client trains on its own version: the machine checks it.
        if driver is not None and driver.config.mode == "async" and progress:
            server_round = progress.server_round
        if (
            progress is None
            or setup is None
            or (progress.run_id, progress.server_round) != (run_id, server_round)
            or progress.phase != "fit"
            or conn.client_id not in (progress.pending or ())
        ):
            return None
        return max_frame_length(setup.parameters)

    def evaluate_received(self, conn: ClientConn, msg: EvaluateResult) -> None:
        """Hand an ``evaluate_result`` to the active run."""
        if self.active is not None:
            self.active.evaluate_received(conn, msg)
        else:
            ignored_result(conn, msg.run_id)
