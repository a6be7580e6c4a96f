"""The active run: drives the sans-I/O RoundMachine over live connections."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fednet.config import RunConfig
from fednet.exceptions import FednetError, SchemaError
from fednet.protocol import Error, EvaluateResult, FitResult, serialize_parts
from fednet.rounds import (
    Phase,
    RoundFinished,
    RoundMachine,
    RunFailed,
    RunFinished,
)
from fednet.server.events import EventHub
from fednet.server.registry import ClientConn, Registry
from fednet.server.setup import RunSetup, prepare_run
from fednet.server.store import Store
from fednet.server.uploads import UploadGate
from fednet.strategies import strategy_from_config
from fednet.typing import ClientId

logger = logging.getLogger(__name__)

# Updates at least this large are folded in a worker thread (numpy releases
# the GIL), so the event loop keeps reading other clients' uploads meanwhile.
OFFLOAD_BYTES = 1 << 20


class RunConflict(FednetError):
    """A run is already active."""


@dataclass(eq=False)
class ActiveRun:
    """Book-keeping of the run in progress."""

    run_id: int
    config: RunConfig
    completed_rounds: int
    setup: RunSetup | None = None
    machine: RoundMachine | None = None
    task: asyncio.Task[None] | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    round_started: float = 0.0
    phase_key: tuple[int, Phase] | None = None
    deadline: float = 0.0
    started: float = field(default_factory=time.monotonic)
    outcome: tuple[str, str | None] = ("failed", "ended without a result")
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def kick(self) -> None:
        """Wake the driver after an input changed the machine."""
        self.changed.set()


class RunManager:
    """Launch, stop and resume runs; route client results to the active one."""

    def __init__(
        self, store: Store, registry: Registry, events: EventHub, stats: Counter[str]
    ) -> None:
        self.store = store
        self.stats = stats
        self.uploads = UploadGate()
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
        run.task = asyncio.create_task(self._drive(run), name=f"run-{run.run_id}")
        self._publish_status(run.run_id)

    # -- inputs from client connections ---------------------------------------

    def client_joined(self, conn: ClientConn) -> None:
        """Check a new client against the active run's data schema."""
        run = self.active
        if run is not None and run.setup is not None:
            self._check_eligible(run, conn)
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
        self._publish_progress(run)
        run.kick()

    # -- the driver -----------------------------------------------------------

    async def _drive(self, run: ActiveRun) -> None:
        status, error = "failed", None
        try:
            await self._prepare(run)
            assert run.machine is not None
            while await self._handle_events(run):
                if run.machine.phase is Phase.IDLE:
                    eligible = await self._wait_for_clients(run)
                    run.round_started = time.monotonic()
                    async with run.lock:
                        run.machine.start_round(eligible)
                    self._publish_progress(run)
                else:
                    await self._wait_phase(run)
                await self._flush(run)
            status, error = run.outcome
        except asyncio.CancelledError as e:
            if e.args == ("shutdown",):
                raise
            status, error = "stopped", "stopped by an operator"
        except Exception as e:  # noqa: BLE001 - a run must end with a reason
            logger.exception("run %d crashed", run.run_id)
            error = f"internal error: {e}"
        finally:
            if self.active is run:
                self.active = None
                for conn in self.registry.all():
                    conn.eligible, conn.note = True, None
        self.store.end_run(run.run_id, status, error, time.time())
        logger.info(
            "run: %d ended %s%s", run.run_id, status, f" ({error})" * bool(error)
        )
        self._publish_status(run.run_id)

    async def _prepare(self, run: ActiveRun) -> None:
        candidates = await self._wait_for_candidates(run)
        stored = self.store.get_run(run.run_id, with_rounds=False)
        run.setup = await asyncio.to_thread(
            prepare_run,
            self.store,
            run.run_id,
            run.config,
            run.completed_rounds,
            [c.hello for c in candidates],
            stored["schema"] if stored else None,
        )
        for conn in self.registry.connected():
            self._check_eligible(run, conn)
        self.store.mark_running(run.run_id, run.setup.schema_dict, time.time())
        run.machine = RoundMachine(
            run_id=run.run_id,
            config=run.config,
            strategy=strategy_from_config(run.config),
            parameters=run.setup.parameters,
            fit_config=run.setup.fit_config,
            rng=np.random.default_rng([run.config.seed, run.completed_rounds]),
            next_round=run.completed_rounds + 1,
            central_evaluate=run.setup.central_evaluate,
            federated_evaluate=run.setup.federated_evaluate,
        )
        self._publish_status(run.run_id)

    async def _wait_for_candidates(self, run: ActiveRun) -> list[ClientConn]:
        while True:
            changed = self.registry.changed
            ready = [
                c for c in self.registry.connected() if c.hello.task == run.config.task
            ]
            if len(ready) >= run.config.min_clients:
                return ready
            await changed.wait()

    async def _wait_for_clients(self, run: ActiveRun) -> list[ClientId]:
        while True:
            changed = self.registry.changed
            eligible = [c.client_id for c in self.registry.connected() if c.eligible]
            if len(eligible) >= run.config.min_clients:
                return eligible
            logger.info(
                "run: %d waits for clients (%d of %d connected)",
                run.run_id,
                len(eligible),
                run.config.min_clients,
            )
            await changed.wait()

    async def _wait_phase(self, run: ActiveRun) -> None:
        machine = run.machine
        assert machine is not None
        key = (machine.server_round, machine.phase)
        if key != run.phase_key:
            run.phase_key = key
            run.deadline = time.monotonic() + run.config.round_timeout_s
        remaining = run.deadline - time.monotonic()
        run.changed.clear()
        try:
            if remaining <= 0:
                raise TimeoutError
            await asyncio.wait_for(run.changed.wait(), remaining)
        except TimeoutError:
            logger.info(
                "%s: round %d timed out after %.1f s",
                machine.phase.value,
                machine.server_round,
                run.config.round_timeout_s,
            )
            async with run.lock:
                machine.round_timed_out()

    async def _flush(self, run: ActiveRun) -> None:
        machine = run.machine
        assert machine is not None
        state = {"fit": "training", "evaluate": "evaluating"}
        while True:
            async with run.lock:
                outgoing = machine.messages_to_send()
            if not outgoing:
                return
            for out in outgoing:
                if isinstance(out.message, Error):
                    self.stats[f"rejected:{out.message.code}"] += len(out.recipients)
                parts = serialize_parts(out.message)
                conns = [self.registry.get(cid) for cid in out.recipients]
                sent = await asyncio.gather(
                    *(c.send(parts) if c is not None else _false() for c in conns)
                )
                for cid, conn, ok in zip(out.recipients, conns, sent):
                    if not ok:
                        async with run.lock:
                            machine.client_left(cid)
                    elif conn is not None and out.message.type in state:
                        self.registry.set_status(conn, state[out.message.type])

    async def _handle_events(self, run: ActiveRun) -> bool:
        """Persist what the machine produced; return False once the run is over."""
        machine = run.machine
        assert machine is not None
        async with run.lock:
            events = machine.events()
        for event in events:
            if isinstance(event, RoundFinished):
                await self._record_round(run, event)
            elif isinstance(event, RunFinished):
                run.outcome = ("finished", None)
            elif isinstance(event, RunFailed):
                run.outcome = ("failed", event.reason)
        return machine.phase is not Phase.DONE

    async def _record_round(self, run: ActiveRun, event: RoundFinished) -> None:
        record = event.record
        duration = time.monotonic() - run.round_started
        await asyncio.to_thread(
            self.store.save_model, run.run_id, record.server_round, event.parameters
        )
        self.store.record_round(run.run_id, record, duration, time.time())
        self.store.prune_models(run.run_id, record.server_round)
        for cid, metrics in record.client_metrics.items():
            conn = self.registry.get(cid)
            if conn is not None:
                conn.last_round = {"server_round": record.server_round, **metrics}
        rounds = self.store.get_rounds(run.run_id)
        self.events.publish(
            "round_finished", {"run_id": run.run_id, "round": rounds[-1]}
        )

    def _check_eligible(self, run: ActiveRun, conn: ClientConn) -> None:
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

    def _publish_progress(self, run: ActiveRun) -> None:
        self.events.publish("round_progress", {"progress": self.progress()})

    def _publish_status(self, run_id: int) -> None:
        run = self.store.get_run(run_id, with_rounds=False)
        self.events.publish("run_status", {"run": run, "progress": self.progress()})


async def _false() -> bool:
    return False
