"""The phase handling the run machines share: the round, gossip and async modes.

:class:`PhasedMachine` holds what every mode has: the run's fields, a phase
and a counter (``server_round``: a round, a gossip step or a model version),
failing and ending the run, and logging with the run's context.
:class:`LockstepMachine` adds what the round and gossip modes share, whose
selected clients fit and then evaluate together: results taken only when
expected, departures, timeouts, rejections, the evaluation phase and plays
short of ``min_clients``. Both stay sans-I/O: the driver owns the clock.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Sequence
from typing import Any, ClassVar

from fednet.config import RunConfig
from fednet.fitconfig import FitConfig
from fednet.learning.preprocess import Preprocess
from fednet.machine import MachineOutputs, MachineProgress, Phase, Wait
from fednet.protocol import Error, Evaluate, EvaluateResult
from fednet.records import RunFailed, RunFinished
from fednet.tally import CentralEvaluate, RoundTally
from fednet.typing import ClientId, NDArrays

ROUND_ATTEMPTS = 3
"""Plays of a round before too few valid updates fail the run: a round short of
``min_clients`` changed nothing, so it is played again (same number and model)."""


class PhasedMachine(MachineOutputs):
    """Hold a run's fields, phase and counter; fail, end and log the run.

    Args:
        run_id: the run's id, echoed in every message.
        config: the run's configuration.
        parameters: the model to start from.
        classes: the run's class labels (None for the synthetic task).
        next_round: the first round, step or version to play.
        central_evaluate: evaluates a model on a held-out set.
        federated_evaluate: ask clients to evaluate on their validation split.
        preprocess: CSV sites' shared preprocessing, sent in every config.
    """

    _LOGGER: ClassVar[logging.Logger]
    """The logger of the mode's module (the records keep its name)."""
    _START: ClassVar[Phase] = Phase.IDLE
    """The phase a run with rounds left starts in."""

    def __init__(
        self,
        *,
        run_id: int,
        config: RunConfig,
        parameters: NDArrays,
        classes: Sequence[str] | None,
        next_round: int = 1,
        central_evaluate: CentralEvaluate | None = None,
        federated_evaluate: bool = True,
        preprocess: Preprocess | None = None,
    ) -> None:
        super().__init__()
        self.run_id, self.config, self.parameters = run_id, config, parameters
        self.server_round = next_round - 1
        self.phase = self._START if next_round <= config.rounds else Phase.DONE
        self._fit_inputs = (None if classes is None else tuple(classes), preprocess)
        self._central_evaluate = central_evaluate
        self._federated_evaluate = federated_evaluate

    def fail(self, reason: str) -> None:
        """End the run with a reason (e.g. stopped, or no clients in time)."""
        if self.phase is not Phase.DONE:
            self._end(RunFailed(reason))

    @property
    def done(self) -> bool:
        """Return whether the run is over."""
        return self.phase is Phase.DONE

    def _end(self, event: RunFinished | RunFailed) -> None:
        self.phase = Phase.DONE
        self._record(event)

    def _test(self, tally: RoundTally, model: NDArrays) -> None:
        """Evaluate ``model`` on the held-out set into ``tally``, if there is one."""
        if self._central_evaluate is not None:
            tally.set_test(*self._central_evaluate(model))

    def _round_config(self) -> FitConfig:
        return FitConfig.for_round(self.config, self.server_round, *self._fit_inputs)

    def _log(self, level: int, msg: str, *args: object, client_id: str = "") -> None:
        extra = {"server_round": self.server_round, "client_id": client_id}
        self._LOGGER.log(level, msg, *args, extra={**extra, "run_id": self.run_id})


class LockstepMachine(PhasedMachine, abc.ABC):
    """Share the fit and evaluate phases of modes whose clients move together.

    A subclass opens a play (its fit phase), closes it with :meth:`_close_fit`
    and records it with :meth:`_finish_play`; ``_UNIT`` ("round" or "step")
    and ``_UPDATE`` ("update" or "model") are the words of its messages.
    """

    # The words go into the %-style templates, not their arguments, so that each
    # mode's log records keep the templates they had before the base existed.
    _UNIT: ClassVar[str]
    _UPDATE: ClassVar[str]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._tally = RoundTally()
        self._attempt = 0

    def evaluate_received(self, client_id: ClientId, result: EvaluateResult) -> None:
        """Take a client's ``evaluate_result`` for the current play."""
        if self._expects(client_id, result.run_id, result.server_round, Phase.EVALUATE):
            self._tally.pending.discard(client_id)
            if refused := self._tally.add_evaluation(client_id, result):
                self._reject(client_id, refused)
            self._maybe_close()

    def client_left(self, client_id: ClientId) -> None:
        """Drop a disconnected client from the play in progress."""
        if client_id not in self._tally.pending:
            return
        self._tally.pending.discard(client_id)
        self._log(logging.INFO, f"%s: client %s left {self._UNIT} %d",
                  self.phase.value, client_id, self.server_round, client_id=client_id)
        if self.phase is Phase.FIT:
            self._tally.dropped.append(client_id)
        self._maybe_close()

    def timed_out(self) -> None:
        """Close the current phase with whatever has arrived (the round timeout)."""
        gone = self._tally.drop_pending()
        if self.phase is Phase.FIT:
            self._tally.dropped.extend(gone)
        self._maybe_close()

    @property
    def wait(self) -> Wait | None:
        """Return the phase in progress with the round timeout, if any."""
        if self.phase not in (Phase.FIT, Phase.EVALUATE):
            return None
        play = f" (play {self._attempt + 1})" if self._attempt else ""
        key = f"{self.phase.value}: {self._UNIT} {self.server_round}{play}"
        return Wait(key, self.config.round_timeout_s)

    def progress(self) -> MachineProgress:
        """Return the phase, counter and clients of the play in progress."""
        return MachineProgress(
            phase=self.phase.value,
            server_round=self.server_round,
            selected=self._tally.selected,
            reported=tuple(self._tally.reported),
            pending=tuple(sorted(self.pending)),
        )

    @property
    def pending(self) -> frozenset[ClientId]:
        """Return the clients the current phase still waits for."""
        return frozenset(self._tally.pending | self._tally.folding)

    @abc.abstractmethod
    def _close_fit(self) -> None:
        """Close the fit phase: fall short, or evaluate what it made."""

    @abc.abstractmethod
    def _finish_play(self) -> None:
        """Record the play and go on (idle) or end the run."""

    @abc.abstractmethod
    def _clear_play(self) -> None:
        """Forget what a play short of ``min_clients`` gathered."""

    def _evaluate_config(self) -> FitConfig:
        return self._round_config()

    def _expects(
        self, client_id: ClientId, run_id: int, server_round: int, phase: Phase
    ) -> bool:
        if (run_id, server_round) == (self.run_id, self.server_round) and (
            self.phase is phase and client_id in self._tally.pending
        ):
            return True
        self._log_ignored(client_id, run_id, server_round, phase)
        return False

    def _log_ignored(
        self, client_id: ClientId, run_id: int, server_round: int, phase: Phase
    ) -> None:
        self._log(logging.WARNING, "%s: ignored a result of client %s for run %d"
                  f" {self._UNIT} %d (late or duplicate)", phase.value, client_id,
                  run_id, server_round, client_id=client_id)

    def _reject(self, client_id: ClientId, reason: str) -> None:
        self._tally.rejected[client_id] = reason
        self._log(logging.WARNING, f"fit: rejected the {self._UPDATE} of client %s"
                  f" in {self._UNIT} %d: %s", client_id, self.server_round, reason,
                  client_id=client_id)
        error = Error("invalid_update", reason, self.run_id, self.server_round)
        self._send((client_id,), error)

    def _maybe_close(self) -> None:
        if self._tally.waiting:
            return
        if self.phase is Phase.FIT:
            self._close_fit()
        elif self.phase is Phase.EVALUATE:
            self._finish_play()

    def _evaluate(self, model: NDArrays) -> None:
        """Evaluate the play's model centrally, then on the clients that reported."""
        self._test(self._tally, model)
        if not self._federated_evaluate:
            self._finish_play()
            return
        self.phase = Phase.EVALUATE
        reported = tuple(self._tally.reported)
        self._tally.pending = set(reported)
        config = self._evaluate_config()
        self._send(reported, Evaluate(self.run_id, self.server_round, config, model))

    def _fall_short(self, why: str) -> None:
        self._attempt += 1
        if self._attempt >= ROUND_ATTEMPTS:
            self.fail(f"{why} ({self._attempt} attempts)")
            return
        self._log(logging.WARNING, f"%s; playing the {self._UNIT} again (attempt %d"
                  " of %d)", why, self._attempt + 1, ROUND_ATTEMPTS)
        self.server_round -= 1
        self.phase = Phase.IDLE
        self._clear_play()
