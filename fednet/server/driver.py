"""The driver of one run: owns the run's state, drives its machine over live sockets.

The driver feeds a sans-I/O :class:`~fednet.machine.RunMachine` (inputs from
client connections, timeouts from its own timer), sends what the machine
produced and records what it decided. The machine is only ever called from
the event loop; the costly work around it runs in threads: validating and
folding large updates (one at a time, in the run's fold thread) and the store's
writes (which fsync); sends run in tasks of their own (:mod:`.sender`). Which
sites the run's trainer takes, and its initial model, are :mod:`.runtrainer`'s.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter

from fednet.config import RunConfig
from fednet.machine import Fold, RunMachine, bound_evaluation
from fednet.protocol import Error, EvaluateResult, FitResult, Message
from fednet.records import RoundFinished, RunFailed, RunFinished
from fednet.secagg.wire import SecaggInput
from fednet.securemachine import SecureRoundMachine
from fednet.server.folds import FoldRunner
from fednet.server.events import EventHub, RoundProgress, RunStatus
from fednet.server.recorder import RunRecorder
from fednet.server.registry import ClientConn, Registry, ignored_result
from fednet.server.runtrainer import NoInitialParameters, RunTrainer, site_started
from fednet.server.sender import Outbox
from fednet.server.setup import RunSetup, build_machine, prepare_run
from fednet.server.store import Store
from fednet.server.waits import Waits
from fednet.typing import ClientId
from fednet.views import ProgressView

logger = logging.getLogger(__name__)

_BUSY = {"fit": "training", "evaluate": "evaluating"}
"""A client's status once the message of that type reached it."""


class RunDriver:
    """Play one run to its end over the registry's connections.

    Args:
        run_id: the run, as stored.
        config: its validated configuration.
        completed_rounds: rounds already recorded (a resumed run).
        store: run history and checkpoints.
        registry: the connected clients.
        events: where dashboards and metrics hear of progress.
        stats: server-wide counters (rejections by reason).
    """

    def __init__(
        self,
        run_id: int,
        config: RunConfig,
        completed_rounds: int,
        *,
        store: Store,
        registry: Registry,
        events: EventHub,
        stats: Counter[str],
    ) -> None:
        self.run_id = run_id
        self.config = config
        self.completed_rounds = completed_rounds
        self.ended = False
        self._store = store
        self._registry = registry
        self._waits = Waits(registry)
        self._recorder = RunRecorder(run_id, store, registry, events)
        self._events = events
        self._stats = stats
        self._setup: RunSetup | None = None
        self._machine: RunMachine | None = None
        self._task: asyncio.Task[None] | None = None
        self._shutdown = False
        self._started = time.monotonic()
        self._round_started = 0.0
        self._outcome: tuple[str, str | None] = ("failed", "ended without a result")
        self._folds = FoldRunner(f"fold-{run_id}", self._folded)
        self._outbox = Outbox(registry, self._delivered)
        self.trainer = RunTrainer(config)

    # -- control ---------------------------------------------------------------

    def start(self) -> None:
        """Start driving the run in a task of its own."""
        self._task = asyncio.create_task(self._drive(), name=f"run-{self.run_id}")
        self.publish_status()

    async def stop(self) -> None:
        """Stop the run; it ends as ``stopped``."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def shutdown(self) -> None:
        """Stop driving without ending the run (it resumes); let an ending finish."""
        self._shutdown = not self.ended
        if self._task is not None:
            if self._shutdown:
                self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    # -- inputs from client connections -----------------------------------------

    def client_joined(self, conn: ClientConn) -> None:
        """Check a new client against the run's data schema."""
        if self._setup is not None:
            self._check_eligible(self._setup, conn)
        self._waits.kick()

    def client_left(self, conn: ClientConn) -> None:
        """Drop a disconnected client from the round in progress."""
        if self._machine is not None:
            self._machine.client_left(conn.client_id)
        self._waits.kick()

    async def update_received(self, conn: ClientConn, msg: FitResult) -> None:
        """Validate and fold a ``fit_result`` (in the run's fold thread), then count it.

        Returns once the update's arrays are no longer in use.
        """
        machine = self._machine_for(conn, msg.run_id)
        fold = machine.accept_update(conn.client_id, msg) if machine else None
        if fold is not None:
            fold.max_examples = conn.hello.num_examples
            await self._folds.run(fold)
        elif machine is not None:
            self._after_input()  # a refusal may have produced messages

    def error_received(self, conn: ClientConn, msg: Error) -> None:
        """Drop a site that cannot answer; exclude one whose trainer cannot serve."""
        if self.trainer.error(conn, msg):
            self._registry.updated(conn)
        if not conn.eligible or msg.server_round == self.progress().server_round:
            self.client_left(conn)

    def evaluate_received(self, conn: ClientConn, msg: EvaluateResult) -> None:
        """Hand an ``evaluate_result`` to the machine, weighed at most as declared."""
        machine = self._machine_for(conn, msg.run_id)
        if machine is not None:
            msg, error = bound_evaluation(msg, conn.hello.num_examples)
            if error is not None:
                self._post((conn.client_id,), error)
            machine.evaluate_received(conn.client_id, msg)
            self._after_input()

    def secagg_received(self, conn: ClientConn, msg: SecaggInput) -> None:
        """Hand a secure-aggregation stage message to a secure run's machine."""
        machine = self._machine_for(conn, msg.run_id)
        if isinstance(machine, SecureRoundMachine):
            machine.secagg_received(conn.client_id, msg, conn.hello.num_examples)
            self._after_input()

    def _folded(self, fold: Fold) -> None:
        if self._machine is not None:
            self._machine.update_folded(fold)
        self._after_input()

    def _machine_for(self, conn: ClientConn, run_id: int) -> RunMachine | None:
        if self._machine is None or self.ended or run_id != self.run_id:
            ignored_result(conn, run_id)
            return None
        return self._machine

    def _after_input(self) -> None:
        self._events.publish(RoundProgress(self.progress()))
        self._waits.kick()

    @property
    def setup(self) -> RunSetup | None:
        """Return the run's fixed facts (schema, start model), once prepared."""
        return self._setup

    def progress(self) -> ProgressView:
        """Return where the run stands (``waiting`` before it has its machine)."""
        now = time.monotonic()
        run_id, rounds, elapsed_s = self.run_id, self.config.rounds, now - self._started
        if self._machine is None:
            return ProgressView(run_id=run_id, rounds=rounds, elapsed_s=elapsed_s,
                                server_round=self.completed_rounds, phase="waiting")
        p = self._machine.progress()
        return ProgressView(
            run_id=run_id, rounds=rounds, elapsed_s=elapsed_s,
            server_round=p.server_round, phase=p.phase,
            selected=p.selected, reported=p.reported, pending=p.pending,
            round_elapsed_s=now - self._round_started)

    def publish_status(self) -> None:
        """Tell dashboards the run's status changed."""
        run = self._store.get_run(self.run_id, with_rounds=False)
        self._events.publish(RunStatus(run, None if self.ended else self.progress()))

    async def _drive(self) -> None:
        status, error, played = "failed", None, False
        try:
            await self._play(await self._prepare())
            (status, error), played = self._outcome, True
        except asyncio.CancelledError:
            if self._shutdown:
                raise
            status, error = "stopped", "stopped by an operator"
        except NoInitialParameters as e:  # the sites', not a bug: no traceback
            error = str(e)
        except Exception as e:  # noqa: BLE001 - a run must end with a reason
            logger.exception("run %d crashed", self.run_id)
            error = f"internal error: {e}"
        finally:
            await self._outbox.close(cancel=not played)  # else its last replies go
            self.ended = True
            self._folds.close()
            for conn in self._registry.all():  # why a site sat out stays shown
                conn.eligible, conn.note = True, conn.note and (
                    f"run {self.run_id}: {conn.note}" if not conn.eligible else None)
        await self._recorder.end(status, error)
        reason = f" ({error})" if error else ""
        logger.info("run: %d ended %s%s", self.run_id, status, reason)
        self.publish_status()

    async def _prepare(self) -> RunMachine:
        candidates = await self._waits.for_candidates(self.config, self.trainer.serves)
        stored = self._store.get_run(self.run_id, with_rounds=False)
        self._setup = setup = await asyncio.to_thread(
            prepare_run, self._store, self.run_id, self.config, self.completed_rounds,
            [c.hello for c in candidates], stored.schema if stored else None,
        )
        for conn in self._registry.connected():
            self._check_eligible(setup, conn)
        self._setup = setup = await site_started(
            self.trainer, self.run_id, setup, self._registry, self._post, self._store
        )
        await self._recorder.mark_running(setup.schema_dict)
        self._machine = build_machine(self.run_id, self.config, setup,
                                      self.completed_rounds, self._waits.capabilities)
        self.publish_status()
        return self._machine

    async def _play(self, machine: RunMachine) -> None:
        while True:
            self._waits.changed.clear()
            await self._persist(machine)
            self._flush(machine)
            if self._waits.changed.is_set():
                continue  # an input came in meanwhile: record and send first
            if machine.done:
                return
            wanted = machine.clients_wanted
            if wanted and machine.wait is None:  # nothing out: wait for clients
                eligible = await self._waits.for_clients(self.run_id, wanted)
            elif not wanted or len(eligible := self._waits.eligible()) < wanted:
                await self._waits.for_input(machine)  # async: newcomers join here
                continue
            if self.config.mode != "async" or not self._round_started:  # else _persist
                self._round_started = time.monotonic()
            machine.clients_available(eligible)
            self._events.publish(RoundProgress(self.progress()))

    def _flush(self, machine: RunMachine) -> None:
        """Post what the machine produced; the sends go on without the driver."""
        for out in machine.messages_to_send():
            self._post(out.recipients, out.message)

    def _post(self, recipients: tuple[ClientId, ...], message: Message) -> None:
        if isinstance(message, Error):
            self._stats[f"rejected:{message.code}"] += len(recipients)
        self._outbox.post(recipients, message)

    def _delivered(self, client_id: ClientId, message: Message, ok: bool) -> None:
        """Drop a client its message did not reach; else mark it busy with it."""
        conn = self._registry.get(client_id)
        if not ok:
            if self._machine is not None and not self.ended:
                self._machine.client_left(client_id)
            self._waits.kick()
        elif conn is not None and message.type in _BUSY:
            self._registry.set_status(conn, _BUSY[message.type])

    async def _persist(self, machine: RunMachine) -> None:
        for event in machine.events():
            if isinstance(event, RoundFinished):
                duration = time.monotonic() - self._round_started
                await self._recorder.round_finished(event, duration)
                self.completed_rounds = event.record.server_round
                if self.config.mode == "async":
                    self._round_started = time.monotonic()
            elif isinstance(event, RunFinished):
                self._outcome = ("finished", event.reason)
            elif isinstance(event, RunFailed):
                self._outcome = ("failed", event.reason)

    def _check_eligible(self, setup: RunSetup, conn: ClientConn) -> None:
        """Mark a client eligible for the run, or tell it why it is not."""
        error = self.trainer.check(setup, conn, self.run_id)
        if error is not None:
            self._outbox.post((conn.client_id,), error)
