"""Sans-I/O FedBuff machine: asynchronous training with a buffered, versioned model.

There are no rounds: each idle client (up to ``max_concurrency``) gets the
current model version in a ``fit`` whose ``server_round`` is that version;
its update is folded as it arrives (:mod:`fednet.fedbuff`), and every
``buffer_size`` folded updates make the next version and its record. A slow
client holds nobody back. The run ends after ``rounds`` versions. Like
:mod:`fednet.rounds`, it never reads a clock: the driver calls
:meth:`BufferedMachine.timed_out` every ``round_timeout_s / TICKS``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fednet.config import RunConfig
from fednet.exceptions import RoundStateError
from fednet.fedbuff import BufferedUpdate, StalenessBuffer, staleness_weight
from fednet.fitconfig import FitConfig
from fednet.learning.preprocess import Preprocess
from fednet.machine import Fold, MachineProgress, Phase, Wait
from fednet.phased import PhasedMachine
from fednet.protocol import Error, Evaluate, EvaluateResult, Fit, FitResult
from fednet.records import RoundFinished, RunFailed, RunFinished
from fednet.roster import Roster, Task
from fednet.tally import CentralEvaluate
from fednet.versions import VersionMade, VersionTally
from fednet.typing import ClientId, NDArrays

logger = logging.getLogger(__name__)

TICKS = 4
"""Timeout checks per ``round_timeout_s``: a task is given up between 1 and
1.25 times ``round_timeout_s`` after it was sent."""


class BufferedMachine(PhasedMachine):
    """Drive an asynchronous (FedBuff) run: dispatch, fold, version, record.

    Args:
        run_id: the run's id, echoed in every message.
        config: the run's configuration (``mode`` async).
        parameters: the model version to start from.
        classes: the run's class labels (None for the synthetic task).
        next_version: the first version to make (resumed runs start later).
        central_evaluate: evaluates each version on a held-out set.
        federated_evaluate: ask idle clients to evaluate each new version.
        preprocess: CSV sites' shared preprocessing, sent in every config.
    """

    _LOGGER, _START = logger, Phase.FIT

    def __init__(
        self,
        *,
        run_id: int,
        config: RunConfig,
        parameters: NDArrays,
        classes: Sequence[str] | None,
        next_version: int = 1,
        central_evaluate: CentralEvaluate | None = None,
        federated_evaluate: bool = True,
        preprocess: Preprocess | None = None,
    ) -> None:
        super().__init__(
            run_id=run_id, config=config, parameters=parameters, classes=classes,
            next_round=next_version, central_evaluate=central_evaluate,
            federated_evaluate=federated_evaluate, preprocess=preprocess,
        )
        self._buffer = StalenessBuffer(parameters)
        self._tally = VersionTally.for_run(config, self._fit_inputs[0])
        self._bases: dict[int, NDArrays] = {}
        self._roster = Roster()
        self._evaluation: VersionMade | None = None  # awaiting its evaluation

    @property
    def version(self) -> int:
        """Return the current model version (``server_round``)."""
        return self.server_round

    def clients_available(self, available: Sequence[ClientId]) -> None:
        """Take the eligible connected clients; give work to the idle ones."""
        self._roster.set_known(available)
        self._dispatch()

    def accept_update(self, client_id: ClientId, result: FitResult) -> Fold | None:
        """Return a Fold for an update this client was asked for, else None.

        An update more than ``max_staleness`` versions old is refused (the
        client gets an ``invalid_update`` error and fresh work).
        """
        task = self._roster.tasks.get(client_id)
        if (
            self.phase is not Phase.FIT
            or result.run_id != self.run_id
            or task is None
            or (task.kind, task.version) != ("fit", result.server_round)
        ):
            self._log(logging.WARNING, "fit: ignored a result of client %s for run %d"
                      " version %d (late, duplicate or not asked for)", client_id,
                      result.run_id, result.server_round, client_id=client_id)
            return None
        del self._roster.tasks[client_id]
        staleness = self.version - task.version
        if staleness > self.config.max_staleness:
            self._refuse(client_id, f"stale update: trained on version {task.version},"
                         f" {staleness} versions behind (max_staleness"
                         f" {self.config.max_staleness})", task.version, stale=True)
            self._dispatch()
            return None
        self._roster.folding[client_id] = staleness
        update = BufferedUpdate(
            self._buffer, self._bases[task.version], staleness_weight(staleness)
        )
        return Fold(client_id, result, update)

    def update_folded(self, fold: Fold) -> None:
        """Count a Fold that ran; make a version once the buffer is full."""
        folding = self._roster.folding
        if fold.client_id not in folding:
            raise RoundStateError(f"no update of {fold.client_id} is being folded")
        staleness = folding.pop(fold.client_id)
        if fold.error is None:
            self._tally.add_fit(fold.client_id, fold.result, staleness)
        else:
            self._refuse(fold.client_id, fold.error, fold.result.server_round)
        self._settle()

    def evaluate_received(self, client_id: ClientId, result: EvaluateResult) -> None:
        """Count a client's evaluation of the version it was sent."""
        task = self._roster.tasks.get(client_id)
        if task is None or (task.kind, task.version, result.run_id) != (
            "evaluate", result.server_round, self.run_id
        ):
            self._log(logging.WARNING, "evaluate: ignored a result of client %s for"
                      " version %d", client_id, result.server_round,
                      client_id=client_id)
            return
        del self._roster.tasks[client_id]
        evaluation = self._evaluation
        if evaluation is not None and evaluation.version == task.version and (
            refused := evaluation.tally.tally.add_evaluation(client_id, result)
        ):
            self._send((client_id,), Error("invalid_update", refused, self.run_id,
                                           task.version))
        self._settle()

    def client_left(self, client_id: ClientId) -> None:
        """Forget a client that disconnected; its task is dropped."""
        self._drop(client_id, self._roster.forget(client_id), "left")
        self._settle()

    def timed_out(self) -> None:
        """Count a timeout check: give up tasks older than ``round_timeout_s``."""
        self._roster.tick += 1
        for client_id in self._roster.expired(TICKS):
            self._drop(client_id, self._roster.tasks.pop(client_id), "timed out on")
        self._settle()

    @property
    def clients_wanted(self) -> int:
        """Return how many eligible clients would bring one the machine lacks.

        ``min_clients`` to start; then one more than it knows, while it has
        room for another training client; else 0.
        """
        limit = self.config.max_concurrency
        if self.phase is not Phase.FIT or limit and self._roster.training() >= limit:
            return 0
        known = len(self._roster.known)
        return known + 1 if known else self.config.min_clients

    @property
    def wait(self) -> Wait | None:
        """Return the timeout check while tasks are out or folding, else None."""
        if self.phase is Phase.DONE or not self._roster.busy:
            return None
        # Not keyed by version: new versions must not push the check back.
        key = f"async: timeout check {self._roster.tick}"
        return Wait(key, self.config.round_timeout_s / TICKS)

    def progress(self) -> MachineProgress:
        """Return the version and who trains or evaluates now."""
        tasks = self._roster.tasks
        return MachineProgress(
            phase=self.phase.value,
            server_round=self.version,
            selected=tuple(sorted(c for c, t in tasks.items() if t.kind == "fit")),
            reported=tuple(sorted(self._tally.staleness)),
            pending=tuple(sorted({*tasks, *self._roster.folding})),
        )

    def _dispatch(self) -> None:
        """Send the current version to idle clients, up to ``max_concurrency``."""
        if self.phase is not Phase.FIT:
            return
        picks = tuple(self._roster.idle()[: self._roster.room(self.config)])
        if not picks:
            return
        send = self._roster.assign(picks, "fit", self.version)
        self._bases[self.version] = self.parameters
        # The config's round seeds local shuffles: each send its own.
        config = FitConfig.for_round(self.config, send, *self._fit_inputs)
        self._send(picks, Fit(self.run_id, self.version, config, self.parameters))
        self._log(logging.INFO, "fit: version %d of run %d sent to %d clients",
                  self.version, self.run_id, len(picks))

    def _new_version(self) -> None:
        """Apply the buffer to the model; evaluate the new version or record it."""
        parameters = self._buffer.apply(self.parameters)
        self._buffer.reset()
        self.server_round, self.parameters = self.version + 1, parameters
        tally = self._tally
        self._tally = VersionTally.for_run(self.config, self._fit_inputs[0])
        self._finish_evaluation()
        self._test(tally.tally, parameters)
        if self.version >= self.config.rounds:
            self.phase = Phase.EVALUATE  # in-flight updates are no longer wanted
            self._roster.drop_fits()
        idle = tuple(self._roster.idle()) if self._federated_evaluate else ()
        self._evaluation = VersionMade(self.version, tally, parameters)
        if idle:
            self._roster.assign(idle, "evaluate", self.version)
            config = self._round_config()
            self._send(idle, Evaluate(self.run_id, self.version, config, parameters))
        self._prune_bases()
        self._settle()

    def _settle(self) -> None:
        """Make a version once the buffer is full, record evaluated ones, give work."""
        full = self._buffer.count >= self._roster.buffer_target(self.config)
        if full and not self._roster.folding and self.phase is Phase.FIT:
            self._new_version()  # which settles again
            return
        evaluation = self._evaluation
        if evaluation is not None and not self._roster.evaluating(evaluation.version):
            self._finish_evaluation()
        self._dispatch()

    def _finish_evaluation(self) -> None:
        evaluation, self._evaluation = self._evaluation, None
        if evaluation is None:
            return
        record = evaluation.tally.record(evaluation.version)
        self._record(RoundFinished(record, evaluation.parameters))
        self._log(logging.INFO, "version: %d of run %d made: %s", evaluation.version,
                  self.run_id, evaluation.tally.summary())
        if evaluation.version >= self.config.rounds:
            self._end(RunFinished())

    def _prune_bases(self) -> None:
        """Keep the versions clients train on, bar those too stale to be folded."""
        oldest = self.version - self.config.max_staleness
        wanted = self._roster.fit_versions()
        self._bases = {v: p for v, p in self._bases.items()
                       if v in wanted and v >= oldest}

    def _drop(self, client_id: ClientId, task: Task | None, why: str) -> None:
        if task is None:
            return
        if task.kind == "fit":
            self._tally.drop(client_id)
        self._log(logging.INFO, "%s: client %s %s version %d", task.kind, client_id,
                  why, task.version, client_id=client_id)
        self._prune_bases()

    def _refuse(self, client_id: ClientId, why: str, version: int, *,
                stale: bool = False) -> None:
        self._tally.refuse(client_id, why, stale=stale)
        code = "stale_update" if stale else "invalid_update"
        self._log(logging.WARNING, "fit: refused the update of client %s: %s",
                  client_id, why, client_id=client_id)
        self._send((client_id,), Error(code, why, self.run_id, version))

    def _end(self, event: RunFinished | RunFailed) -> None:
        self._roster.tasks.clear()
        super()._end(event)
