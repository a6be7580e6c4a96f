"""Launch, stop and resume runs; route client results to the active one."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any

from fednet.config import RunConfig
from fednet.exceptions import FednetError, SchemaError
from fednet.params import BufferPool
from fednet.protocol import Error, EvaluateResult, FitResult, serialize_parts
from fednet.server.events import EventHub
from fednet.server.driver import ActiveRun, RunDriver
from fednet.server.registry import ClientConn, Registry
from fednet.server.store import Store
from fednet.server.uploads import UploadGate

logger = logging.getLogger(__name__)

# Updates at least this large are folded in a worker thread (numpy releases
# the GIL), so the event loop keeps reading other clients' uploads meanwhile.
OFFLOAD_BYTES = 1 << 20


class RunConflict(FednetError):
    """A run is already active."""


class RunManager:
    """Launch, stop and resume runs; route client results to the active one."""

    def __init__(
        self, store: Store, registry: Registry, events: EventHub, stats: Counter[str]
    ) -> None:
        self.store = store
        self.stats = stats
        self.uploads = UploadGate()
        # Joined upload frames: one buffer per upload slot, plus one arriving.
        self.buffers = BufferPool(max_free=self.uploads.slots + 1)
        self._background: set[asyncio.Future[bool]] = set()
        self.registry = registry
        self.events = events
        self.active: ActiveRun | None = None

    # -- control --------------------------------------------------------------

    def launch(self, config: RunConfig) -> int:
        """Create a run and start driving it.

        Raises:
            RunConflict: if another run is queued or running.
        """
        if self.active is not None:
            raise RunConflict(f"run {self.active.run_id} is still active")
        run_id = self.store.create_run(config.to_dict(), time.time())
        self._start(ActiveRun(run_id, config, completed_rounds=0))
        return run_id

    def resume_unfinished(self) -> None:
        """Continue the newest run a previous server process left unfinished."""
        runs = self.store.unfinished_runs()
        for stale in runs[:-1]:
            self.store.end_run(
                stale["id"], "failed", "superseded by a newer run", time.time()
            )
        if runs and self.active is None:
            run = runs[-1]
            config = RunConfig.from_dict(run["config"])
            logger.info(
                "run: resuming run %d after round %d",
                run["id"],
                run["completed_rounds"],
            )
            self._start(ActiveRun(run["id"], config, run["completed_rounds"]))

    async def stop(self, run_id: int) -> bool:
        """Stop the run if it is the active one; return whether it was."""
        active = self.active
        if active is None or active.run_id != run_id or active.task is None:
            return False
        active.task.cancel()
        await asyncio.gather(active.task, return_exceptions=True)
        return True

    async def close(self) -> None:
        """Cancel the driver without marking the run ended (it resumes on restart)."""
        if self.active is not None and self.active.task is not None:
            self.active.task.cancel(msg="shutdown")
            await asyncio.gather(self.active.task, return_exceptions=True)

    def _start(self, run: ActiveRun) -> None:
        self.active = run
        run.task = asyncio.create_task(
            RunDriver(self, run).drive(), name=f"run-{run.run_id}"
        )
        self.publish_status(run.run_id)

    # -- inputs from client connections ---------------------------------------

    def client_joined(self, conn: ClientConn) -> None:
        """Check a new client against the active run's data schema."""
        run = self.active
        if run is not None and run.setup is not None:
            self.check_eligible(run, conn)
        if run is not None:
            run.kick()

    async def client_left(self, conn: ClientConn) -> None:
        """Drop a disconnected client from the round in progress."""
        await self.uploads.finished(conn)
        run = self.active
        if run is not None and run.machine is not None:
            async with run.lock:
                run.machine.client_left(conn.client_id)
            run.kick()

    async def update_received(self, conn: ClientConn, msg: FitResult) -> None:
        """Hand a fit_result to the round machine, freeing the client's upload slot.

        Large updates are validated and folded in a worker thread, so the
        event loop keeps receiving other uploads meanwhile.
        """
        try:
            run = self._target(conn, msg.run_id)
            if run is not None:
                assert run.machine is not None
                nbytes = sum(p.nbytes for p in msg.parameters)
                async with run.lock:
                    if nbytes >= OFFLOAD_BYTES:
                        await asyncio.to_thread(
                            run.machine.update_received, conn.client_id, msg
                        )
                    else:
                        run.machine.update_received(conn.client_id, msg)
                self._after_input(run)
        finally:
            await self.uploads.finished(conn)

    async def evaluate_received(self, conn: ClientConn, msg: EvaluateResult) -> None:
        """Hand an evaluate_result to the round machine."""
        run = self._target(conn, msg.run_id)
        if run is not None:
            assert run.machine is not None
            async with run.lock:
                run.machine.evaluate_received(conn.client_id, msg)
            self._after_input(run)

    def _target(self, conn: ClientConn, run_id: int) -> ActiveRun | None:
        run = self.active
        if run is None or run.machine is None or run.run_id != run_id:
            logger.warning(
                "ignored a result of client %s for run %d, which is not active",
                conn.client_id,
                run_id,
            )
            return None
        return run

    def _after_input(self, run: ActiveRun) -> None:
        self.publish_progress(run)
        run.kick()

    def check_eligible(self, run: ActiveRun, conn: ClientConn) -> None:
        """Mark a client eligible for the run, or tell it why it is not."""
        assert run.setup is not None
        try:
            run.setup.check_client(conn.hello)
        except SchemaError as e:
            conn.eligible, conn.note = False, str(e)
            error = Error("schema_mismatch", str(e), run.run_id)
            task = asyncio.ensure_future(conn.send(serialize_parts(error)))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            logger.warning(
                "client %s cannot join run %d: %s", conn.client_id, run.run_id, e
            )
        else:
            conn.eligible, conn.note = True, None

    # -- dashboard events -----------------------------------------------------

    def progress(self) -> dict[str, Any] | None:
        """Return the active run's live progress, or None."""
        run = self.active
        if run is None:
            return None
        machine = run.machine
        info: dict[str, Any] = {
            "run_id": run.run_id,
            "rounds": run.config.rounds,
            "elapsed_s": time.monotonic() - run.started,
            "server_round": run.completed_rounds,
            "phase": "waiting",
        }
        if machine is not None:
            info.update(
                server_round=machine.server_round,
                phase=machine.phase.value,
                selected=list(machine.selected),
                reported=list(machine.reported),
                pending=sorted(machine.pending),
                round_elapsed_s=time.monotonic() - run.round_started,
            )
        return info

    def publish_progress(self, run: ActiveRun) -> None:
        """Tell dashboards how the round in progress stands."""
        self.events.publish("round_progress", {"progress": self.progress()})

    def publish_status(self, run_id: int) -> None:
        """Tell dashboards a run's status changed."""
        run = self.store.get_run(run_id, with_rounds=False)
        self.events.publish("run_status", {"run": run, "progress": self.progress()})
