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
from fednet.learning.preprocess import Preprocess
from fednet.machine import Fold, Phase, round_finished
from fednet.phased import ROUND_ATTEMPTS, LockstepMachine
from fednet.protocol import Fit, FitResult
from fednet.records import RunFinished
from fednet.strategies import Aggregator, Strategy
from fednet.tally import CentralEvaluate, RoundTally, stats_reading
from fednet.typing import ClientId, NDArrays

__all__ = ["ROUND_ATTEMPTS", "Phase", "RoundMachine"]

logger = logging.getLogger(__name__)


class RoundMachine(LockstepMachine):
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

    _LOGGER, _UNIT, _UPDATE = logger, "round", "update"

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
        super().__init__(
            run_id=run_id, config=config, parameters=parameters, classes=classes,
            next_round=next_round, central_evaluate=central_evaluate,
            federated_evaluate=federated_evaluate, preprocess=preprocess,
        )
        self.strategy = strategy
        self._rng = rng
        self._aggregator: Aggregator | None = None
        self._new_params: NDArrays | None = None

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

    def clients_available(self, available: Sequence[ClientId]) -> None:
        """Start the next round when idle (the driver's entry point)."""
        if self.phase is Phase.IDLE:
            self.start_round(available)

    @property
    def clients_wanted(self) -> int:
        """Return ``min_clients`` between rounds, else 0."""
        return self.config.min_clients if self.phase is Phase.IDLE else 0

    # -- internals ------------------------------------------------------------

    def _log_ignored(
        self, client_id: ClientId, run_id: int, server_round: int, phase: Phase
    ) -> None:
        self._log(logging.WARNING,
                  "%s: ignored a result of client %s for run %d round %d "
                  "(current run %d round %d, late or duplicate)",
                  phase.value, client_id, run_id, server_round, self.run_id,
                  self.server_round, client_id=client_id)

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
        self._evaluate(self._new_params)

    def _clear_play(self) -> None:
        self._aggregator = None

    def _finish_play(self) -> None:
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
