"""The driver of one run: waits for clients, plays rounds, persists them."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from fednet.config import RunConfig
from fednet.protocol import Error, serialize_parts
from fednet.records import RoundFinished, RunFailed, RunFinished
from fednet.rounds import Phase, RoundMachine
from fednet.server.registry import ClientConn
from fednet.server.setup import RunSetup, prepare_run
from fednet.strategies import strategy_from_config
from fednet.typing import ClientId

if TYPE_CHECKING:
    from fednet.server.runs import RunManager

logger = logging.getLogger(__name__)


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


class RunDriver:
    """Drive one run's RoundMachine over the manager's live connections.

    Args:
        manager: owns the store, registry, events and the active run.
        run: the run to drive.
    """

    def __init__(self, manager: RunManager, run: ActiveRun) -> None:
        self.manager = manager
        self.run = run

    async def drive(self) -> None:
        """Play the run to its end and record how it ended."""
        run = self.run
        status, error = "failed", None
        try:
            await self._prepare()
            assert run.machine is not None
            while await self._handle_events():
                if run.machine.phase is Phase.IDLE:
                    eligible = await self._wait_for_clients()
                    run.round_started = time.monotonic()
                    async with run.lock:
                        run.machine.start_round(eligible)
                    self.manager.publish_progress(run)
                else:
                    await self._wait_phase()
                await self._flush()
            status, error = run.outcome
        except asyncio.CancelledError as e:
            if e.args == ("shutdown",):
                raise
            status, error = "stopped", "stopped by an operator"
        except Exception as e:  # noqa: BLE001 - a run must end with a reason
            logger.exception("run %d crashed", run.run_id)
            error = f"internal error: {e}"
        finally:
            if self.manager.active is run:
                self.manager.active = None
                for conn in self.manager.registry.all():
                    conn.eligible, conn.note = True, None
        self.manager.store.end_run(run.run_id, status, error, time.time())
        logger.info(
            "run: %d ended %s%s", run.run_id, status, f" ({error})" * bool(error)
        )
        self.manager.publish_status(run.run_id)

    async def _prepare(self) -> None:
        run = self.run
        candidates = await self._wait_for_candidates()
        stored = self.manager.store.get_run(run.run_id, with_rounds=False)
        run.setup = await asyncio.to_thread(
            prepare_run,
            self.manager.store,
            run.run_id,
            run.config,
            run.completed_rounds,
            [c.hello for c in candidates],
            stored["schema"] if stored else None,
        )
        for conn in self.manager.registry.connected():
            self.manager.check_eligible(run, conn)
        self.manager.store.mark_running(run.run_id, run.setup.schema_dict, time.time())
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
        self.manager.publish_status(run.run_id)

    async def _wait_for_candidates(self) -> list[ClientConn]:
        run = self.run
        while True:
            changed = self.manager.registry.changed
            ready = [
                c
                for c in self.manager.registry.connected()
                if c.hello.task == run.config.task
            ]
            if len(ready) >= run.config.min_clients:
                return ready
            await changed.wait()

    async def _wait_for_clients(self) -> list[ClientId]:
        run = self.run
        while True:
            changed = self.manager.registry.changed
            eligible = [
                c.client_id for c in self.manager.registry.connected() if c.eligible
            ]
            if len(eligible) >= run.config.min_clients:
                return eligible
            logger.info(
                "run: %d waits for clients (%d of %d connected)",
                run.run_id,
                len(eligible),
                run.config.min_clients,
            )
            await changed.wait()

    async def _wait_phase(self) -> None:
        run = self.run
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

    async def _flush(self) -> None:
        run = self.run
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
                    self.manager.stats[f"rejected:{out.message.code}"] += len(
                        out.recipients
                    )
                parts = serialize_parts(out.message)
                conns = [self.manager.registry.get(cid) for cid in out.recipients]
                sent = await asyncio.gather(
                    *(c.send(parts) if c is not None else _false() for c in conns)
                )
                for cid, conn, ok in zip(out.recipients, conns, sent):
                    if not ok:
                        async with run.lock:
                            machine.client_left(cid)
                    elif conn is not None and out.message.type in state:
                        self.manager.registry.set_status(conn, state[out.message.type])

    async def _handle_events(self) -> bool:
        """Persist what the machine produced; return False once the run is over."""
        run = self.run
        machine = run.machine
        assert machine is not None
        async with run.lock:
            events = machine.events()
        for event in events:
            if isinstance(event, RoundFinished):
                await self._record_round(event)
            elif isinstance(event, RunFinished):
                run.outcome = ("finished", None)
            elif isinstance(event, RunFailed):
                run.outcome = ("failed", event.reason)
        return machine.phase is not Phase.DONE

    async def _record_round(self, event: RoundFinished) -> None:
        run = self.run
        record = event.record
        duration = time.monotonic() - run.round_started
        await asyncio.to_thread(
            self.manager.store.save_model,
            run.run_id,
            record.server_round,
            event.parameters,
        )
        self.manager.store.record_round(run.run_id, record, duration, time.time())
        self.manager.store.prune_models(run.run_id, record.server_round)
        for cid, metrics in record.client_metrics.items():
            conn = self.manager.registry.get(cid)
            if conn is not None:
                conn.last_round = {"server_round": record.server_round, **metrics}
        rounds = self.manager.store.get_rounds(
            run.run_id, since_round=record.server_round - 1
        )
        self.manager.events.publish(
            "round_finished", {"run_id": run.run_id, "round": rounds[-1]}
        )


async def _false() -> bool:
    return False
