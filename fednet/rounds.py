"""Sans-I/O round state machine of one run: events in, messages and records out.

It never touches a socket, a clock or a timer (``round_timeout_s`` is the
driver's): it is the server driver's :class:`fednet.machine.RunMachine`."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from fednet.central_dp import budget_stop, round_epsilon
from fednet.config import RunConfig
from fednet.exceptions import RoundStateError
from fednet.machine import Fold, MachineOutputs, MachineProgress, Phase, Wait
from fednet.machine import round_finished
from fednet.fitconfig import FitConfig
from fednet.learning.preprocess import Preprocess
from fednet.protocol import Error, Evaluate, EvaluateResult, Fit, FitResult
from fednet.records import RunFailed, RunFinished
from fednet.strategies import Aggregator, Strategy
from fednet.tally import CentralEvaluate, RoundTally, stats_reading
from fednet.typing import ClientId, NDArrays

logger = logging.getLogger(__name__)

ROUND_ATTEMPTS = 3
"""Plays of a round before too few valid updates fail the run: a round short of
``min_clients`` changed nothing, so it is played again (same number and model)."""


class RoundMachine(MachineOutputs):
    """Drive the rounds of one run: select, fit, aggregate, evaluate, record.

    Args:
        run_id: the run's id, echoed in every message.
        config: the run's configuration.
        strategy: chooses clients and aggregates their updates.
        parameters: the global model to start from.
        classes: the run's class labels (None for the synthetic task).
        rng: randomness for client sampling (None: ``[seed, round]`` seeds each
            round's, so a resumed run samples as the uninterrupted one did).
        next_round: the first round to play (resuming runs start later).
        central_evaluate: evaluates the global model on a held-out set.
        federated_evaluate: ask clients to evaluate on their validation split.
        preprocess: CSV sites' shared preprocessing, sent in every config.
    """

    def __init__(
        self,
        *,
        run_id: int,
        config: RunConfig,
        strategy: Strategy,
        parameters: NDArrays,
        classes: Sequence[str] | None,
        rng: np.random.Generator | None = None,
        next_round: int = 1,
        central_evaluate: CentralEvaluate | None = None,
        federated_evaluate: bool = True,
        preprocess: Preprocess | None = None,
    ) -> None:
        super().__init__()
        self.run_id = run_id
        self.config = config
        self.strategy = strategy
        self.parameters = parameters
        self.server_round = next_round - 1
        self.phase = Phase.IDLE if next_round <= config.rounds else Phase.DONE
        self._fit_inputs = (None if classes is None else tuple(classes), preprocess)
        self._rng = rng
        self._central_evaluate = central_evaluate
        self._federated_evaluate = federated_evaluate
        self._tally = RoundTally()
        self._aggregator: Aggregator | None = None
        self._new_params: NDArrays | None = None
        self._attempt = 0

    # -- inputs ---------------------------------------------------------------

    def start_round(self, available: Sequence[ClientId]) -> None:
        """Begin the next round with the clients that are connected and eligible.

        A DP run whose budget this round would exceed finishes instead.

        Raises:
            RoundStateError: mid-round, after the run, or below ``min_clients``.
        """
        if self.phase is not Phase.IDLE:
            raise RoundStateError(f"cannot start a round in phase {self.phase.value}")
        if len(available) < self.config.min_clients:
            raise RoundStateError(f"{len(available)} clients available, min_clients"
                                  f" is {self.config.min_clients}")
        if stop := budget_stop(self.strategy, self.server_round + 1, len(available)):
            self._end(RunFinished(stop))
            return
        self.server_round += 1
        rng = self._rng or np.random.default_rng([self.config.seed, self.server_round])
        selected = tuple(self.strategy.sample_clients(available, rng))
        epsilon = round_epsilon(self.strategy, self.server_round)
        self._tally = RoundTally(selected, set(selected), epsilon=epsilon,
                                 **stats_reading(self.config, self._fit_inputs[0]))
        self._aggregator = self.strategy.aggregator(self.parameters)
        self.phase = Phase.FIT
        fit = Fit(self.run_id, self.server_round, self._round_config(), self.parameters)
        self._send(selected, fit)
        self._log(logging.INFO, "fit: round %d of run %d sent to %d clients",
                  self.server_round, self.run_id, len(selected))

    def update_received(self, client_id: ClientId, result: FitResult) -> None:
        """Take a client's ``fit_result`` in one step: accept, fold, account."""
        fold = self.accept_update(client_id, result)
        if fold is not None:
            fold.run()
            self.update_folded(fold)

    def accept_update(self, client_id: ClientId, result: FitResult) -> Fold | None:
        """Return a Fold if the round waits for this result, else None (logged).

        Results for another run or round, from unselected clients, or
        duplicates are ignored; the phase cannot close until the Fold is back.
        """
        if not self._expects(client_id, result.run_id, result.server_round, Phase.FIT):
            return None
        assert self._aggregator is not None
        self._tally.pending.discard(client_id)
        self._tally.folding.add(client_id)
        return Fold(client_id, result, self._aggregator)

    def update_folded(self, fold: Fold) -> None:
        """Account for a Fold that ran: the client reported, or was rejected."""
        if fold.client_id not in self._tally.folding:
            raise RoundStateError(f"no update of {fold.client_id} is being folded")
        self._tally.folding.discard(fold.client_id)
        if fold.error is None:
            self._tally.add_fit(fold.client_id, fold.result)
        else:
            self._reject(fold.client_id, fold.error)
        self._maybe_close()

    def evaluate_received(self, client_id: ClientId, result: EvaluateResult) -> None:
        """Take a client's ``evaluate_result`` for the current round."""
        if self._expects(client_id, result.run_id, result.server_round, Phase.EVALUATE):
            self._tally.pending.discard(client_id)
            if refused := self._tally.add_evaluation(client_id, result):
                self._reject(client_id, refused)
            self._maybe_close()

    def client_left(self, client_id: ClientId) -> None:
        """Drop a disconnected client from the round in progress."""
        if client_id not in self._tally.pending:
            return
        self._tally.pending.discard(client_id)
        self._log(logging.INFO, "%s: client %s left round %d", self.phase.value,
                  client_id, self.server_round, client_id=client_id)
        if self.phase is Phase.FIT:
            self._tally.dropped.append(client_id)
        self._maybe_close()

    def timed_out(self) -> None:
        """Close the current phase with whatever has arrived (the round timeout)."""
        gone = self._tally.drop_pending()
        if self.phase is Phase.FIT:
            self._tally.dropped.extend(gone)
        self._maybe_close()

    def fail(self, reason: str) -> None:
        """End the run with a reason (e.g. stopped, or no clients in time)."""
        if self.phase is not Phase.DONE:
            self._end(RunFailed(reason))

    def clients_available(self, available: Sequence[ClientId]) -> None:
        """Start the next round when idle (the driver's entry point)."""
        if self.phase is Phase.IDLE:
            self.start_round(available)

    @property
    def done(self) -> bool:
        """Return whether the run is over."""
        return self.phase is Phase.DONE

    @property
    def clients_wanted(self) -> int:
        """Return ``min_clients`` between rounds, else 0."""
        return self.config.min_clients if self.phase is Phase.IDLE else 0

    @property
    def wait(self) -> Wait | None:
        """Return the phase in progress with the round timeout, if any."""
        if self.phase not in (Phase.FIT, Phase.EVALUATE):
            return None
        play = f" (play {self._attempt + 1})" if self._attempt else ""
        key = f"{self.phase.value}: round {self.server_round}{play}"
        return Wait(key, self.config.round_timeout_s)

    def progress(self) -> MachineProgress:
        """Return the phase, round and clients of the round in progress."""
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

    # -- internals ------------------------------------------------------------

    def _expects(
        self, client_id: ClientId, run_id: int, server_round: int, phase: Phase
    ) -> bool:
        if (run_id, server_round) == (self.run_id, self.server_round) and (
            self.phase is phase and client_id in self._tally.pending
        ):
            return True
        self._log(logging.WARNING,
                  "%s: ignored a result of client %s for run %d round %d "
                  "(current run %d round %d, late or duplicate)",
                  phase.value, client_id, run_id, server_round, self.run_id,
                  self.server_round, client_id=client_id)
        return False

    def _reject(self, client_id: ClientId, reason: str) -> None:
        self._tally.rejected[client_id] = reason
        self._log(logging.WARNING, "fit: rejected the update of client %s in round "
                  "%d: %s", client_id, self.server_round, reason, client_id=client_id)
        error = Error("invalid_update", reason, self.run_id, self.server_round)
        self._send((client_id,), error)

    def _log(self, level: int, msg: str, *args: object, client_id: str = "") -> None:
        extra = {"server_round": self.server_round, "client_id": client_id}
        logger.log(level, msg, *args, extra={**extra, "run_id": self.run_id})

    def _round_config(self) -> FitConfig:
        return FitConfig.for_round(self.config, self.server_round, *self._fit_inputs)

    def _maybe_close(self) -> None:
        if self._tally.waiting:
            return
        if self.phase is Phase.FIT:
            self._close_fit()
        elif self.phase is Phase.EVALUATE:
            self._finish_round()

    def _close_fit(self) -> None:
        assert self._aggregator is not None
        count, selected = self._aggregator.count, len(self._tally.selected)
        if count < self.config.min_clients:
            self._fall_short(f"round {self.server_round}: {count} of {selected} "
                             "selected clients sent a valid update, min_clients "
                             f"is {self.config.min_clients}")
            return
        self._new_params = self._aggregator.result()
        self._tally.num_examples = self._aggregator.total_examples
        self._aggregator = None
        if self._central_evaluate is not None:
            self._tally.set_test(*self._central_evaluate(self._new_params))
        if not self._federated_evaluate:
            self._finish_round()
            return
        self.phase = Phase.EVALUATE
        reported = tuple(self._tally.reported)
        self._tally.pending = set(reported)
        self._send(reported, Evaluate(self.run_id, self.server_round,
                                      self._round_config(), self._new_params))

    def _fall_short(self, why: str) -> None:
        self._attempt += 1
        if self._attempt >= ROUND_ATTEMPTS:
            self.fail(f"{why} ({self._attempt} attempts)")
            return
        self._log(logging.WARNING, "%s; playing the round again (attempt %d of %d)",
                  why, self._attempt + 1, ROUND_ATTEMPTS)
        self.server_round -= 1
        self._aggregator, self.phase = None, Phase.IDLE

    def _finish_round(self) -> None:
        assert self._new_params is not None
        self._attempt = 0
        record = self._tally.record(self.server_round)
        state, self.parameters = self.strategy.server_state(), self._new_params
        self._record(round_finished(record, self.parameters, state))
        self._log(logging.INFO, "round: %d of run %d finished with %d clients",
                  self.server_round, self.run_id, record.num_clients)
        last = self.server_round >= self.config.rounds
        stop = None if last else budget_stop(self.strategy, self.server_round + 1, None)
        if last or stop:
            self._end(RunFinished(stop))
        else:
            self.phase = Phase.IDLE

    def _end(self, event: RunFinished | RunFailed) -> None:
        self.phase = Phase.DONE
        self._record(event)
