"""Sans-I/O round state machine of one run: events in, messages and records out.

The machine never touches a socket, a clock or a timer. The server calls
:meth:`RoundMachine.start_round`, :meth:`~RoundMachine.update_received`,
:meth:`~RoundMachine.evaluate_received`, :meth:`~RoundMachine.client_left` and
:meth:`~RoundMachine.round_timed_out`, then drains
:meth:`~RoundMachine.messages_to_send` and :meth:`~RoundMachine.events`.
Timers (``round_timeout_s``) belong to the caller.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fednet.config import RunConfig
from fednet.exceptions import AggregationError, RoundStateError
from fednet.protocol import Error, Evaluate, EvaluateResult, Fit, FitResult
from fednet.records import (
    Event,
    Outgoing,
    RoundFinished,
    RoundRecord,
    RunFailed,
    RunFinished,
    WeightedMean,
)
from fednet.strategies import Aggregator, Strategy
from fednet.typing import ClientId, Metrics, NDArrays

logger = logging.getLogger(__name__)

CentralEvaluate = Callable[[NDArrays], tuple[float, Metrics]]


class Phase(enum.Enum):
    """Where the machine is within a round."""

    IDLE = "idle"
    FIT = "fit"
    EVALUATE = "evaluate"
    DONE = "done"


class RoundMachine:
    """Drive the rounds of one run: select, fit, aggregate, evaluate, record.

    Args:
        run_id: the run's id, echoed in every message.
        config: the run's configuration.
        strategy: chooses clients and aggregates their updates.
        parameters: the global model to start from.
        fit_config: extra config for clients (e.g. the run's ``classes``).
        next_round: the first round to play (resuming runs start later).
        central_evaluate: evaluates the global model on a held-out set.
        federated_evaluate: ask clients to evaluate on their validation split.
        rng: randomness for client sampling.
    """

    def __init__(
        self,
        *,
        run_id: int,
        config: RunConfig,
        strategy: Strategy,
        parameters: NDArrays,
        fit_config: dict[str, Any],
        rng: np.random.Generator,
        next_round: int = 1,
        central_evaluate: CentralEvaluate | None = None,
        federated_evaluate: bool = True,
    ) -> None:
        self.run_id = run_id
        self.config = config
        self.strategy = strategy
        self.parameters = parameters
        self.server_round = next_round - 1
        self.phase = Phase.IDLE if next_round <= config.rounds else Phase.DONE
        self._fit_config = {**config.to_dict(), **fit_config}
        self._rng = rng
        self._central_evaluate = central_evaluate
        self._federated_evaluate = federated_evaluate
        self._outgoing: list[Outgoing] = []
        self._events: list[Event] = []
        self._reset_round()

    def _reset_round(self) -> None:
        self._selected: tuple[ClientId, ...] = ()
        self._pending: set[ClientId] = set()
        self._reported: list[ClientId] = []
        self._dropped: list[ClientId] = []
        self._rejected: dict[ClientId, str] = {}
        self._aggregator: Aggregator | None = None
        self._fit_metrics = WeightedMean()
        self._eval_metrics = WeightedMean()
        self._eval_loss = WeightedMean()
        self._evaluated: list[ClientId] = []
        self._client_metrics: dict[ClientId, Metrics] = {}
        self._new_params: NDArrays | None = None
        self._num_examples = 0
        self._test: tuple[float | None, float | None] = (None, None)

    # -- inputs ---------------------------------------------------------------

    def start_round(self, available: Sequence[ClientId]) -> None:
        """Begin the next round with the clients that are connected and eligible.

        Raises:
            RoundStateError: if a round is in progress, the run is over, or
                fewer than ``min_clients`` clients are available.
        """
        if self.phase is not Phase.IDLE:
            raise RoundStateError(f"cannot start a round in phase {self.phase.value}")
        if len(available) < self.config.min_clients:
            raise RoundStateError(
                f"{len(available)} clients available, min_clients is "
                f"{self.config.min_clients}"
            )
        self._reset_round()
        self.server_round += 1
        self._selected = tuple(self.strategy.sample_clients(available, self._rng))
        self._pending = set(self._selected)
        self._aggregator = self.strategy.aggregator(self.parameters)
        self.phase = Phase.FIT
        config = {**self._fit_config, "server_round": self.server_round}
        fit = Fit(self.run_id, self.server_round, config, self.parameters)
        self._outgoing.append(Outgoing(self._selected, fit))
        logger.info(
            "fit: round %d of run %d sent to %d clients",
            self.server_round,
            self.run_id,
            len(self._selected),
            extra={"server_round": self.server_round, "run_id": self.run_id},
        )

    def update_received(self, client_id: ClientId, result: FitResult) -> None:
        """Take a client's ``fit_result``; invalid ones get an ``error`` reply.

        Results for another run or round, from unselected clients, or
        duplicates are ignored and logged; the global model is never touched
        before the round closes.
        """
        if not self._expects(client_id, result.run_id, result.server_round, Phase.FIT):
            return
        assert self._aggregator is not None
        self._pending.discard(client_id)
        try:
            self._aggregator.add(result.parameters, result.num_examples)
        except AggregationError as e:
            self._reject(client_id, str(e))
        else:
            self._reported.append(client_id)
            self._fit_metrics.add(result.metrics, result.num_examples)
            self._client_metrics[client_id] = {
                **result.metrics,
                "num_examples": result.num_examples,
            }
        self._maybe_close_fit()

    def evaluate_received(self, client_id: ClientId, result: EvaluateResult) -> None:
        """Take a client's ``evaluate_result`` for the current round."""
        if not self._expects(
            client_id, result.run_id, result.server_round, Phase.EVALUATE
        ):
            return
        self._pending.discard(client_id)
        if result.num_examples > 0:
            self._evaluated.append(client_id)
            self._eval_loss.add({"loss": result.loss}, result.num_examples)
            self._eval_metrics.add(result.metrics, result.num_examples)
            entry = self._client_metrics.setdefault(client_id, {})
            entry["val_loss"] = result.loss
            entry.update({f"val_{k}": v for k, v in result.metrics.items()})
        self._maybe_close_evaluate()

    def client_left(self, client_id: ClientId) -> None:
        """Drop a disconnected client from the round in progress."""
        if client_id not in self._pending:
            return
        self._pending.discard(client_id)
        logger.info(
            "%s: client %s left round %d",
            self.phase.value,
            client_id,
            self.server_round,
            extra={"server_round": self.server_round, "client_id": client_id},
        )
        if self.phase is Phase.FIT:
            self._dropped.append(client_id)
            self._maybe_close_fit()
        elif self.phase is Phase.EVALUATE:
            self._maybe_close_evaluate()

    def round_timed_out(self) -> None:
        """Close the current phase with whatever has arrived."""
        if self.phase is Phase.FIT:
            self._dropped.extend(sorted(self._pending))
            self._pending.clear()
            self._maybe_close_fit()
        elif self.phase is Phase.EVALUATE:
            self._pending.clear()
            self._maybe_close_evaluate()

    def fail(self, reason: str) -> None:
        """End the run with a reason (e.g. stopped, or no clients in time)."""
        if self.phase is not Phase.DONE:
            self.phase = Phase.DONE
            self._events.append(RunFailed(reason))

    # -- outputs --------------------------------------------------------------

    def messages_to_send(self) -> list[Outgoing]:
        """Return and forget the messages produced since the last call."""
        out, self._outgoing = self._outgoing, []
        return out

    def events(self) -> list[Event]:
        """Return and forget the events produced since the last call."""
        out, self._events = self._events, []
        return out

    @property
    def pending(self) -> frozenset[ClientId]:
        """Return the clients the current phase still waits for."""
        return frozenset(self._pending)

    @property
    def selected(self) -> tuple[ClientId, ...]:
        """Return the clients selected for the current round."""
        return self._selected

    @property
    def reported(self) -> tuple[ClientId, ...]:
        """Return the clients whose update was accepted this round."""
        return tuple(self._reported)

    # -- internals ------------------------------------------------------------

    def _expects(
        self, client_id: ClientId, run_id: int, server_round: int, phase: Phase
    ) -> bool:
        if (
            run_id == self.run_id
            and server_round == self.server_round
            and self.phase is phase
            and client_id in self._pending
        ):
            return True
        logger.warning(
            "%s: ignored a result of client %s for run %d round %d "
            "(current run %d round %d, late or duplicate)",
            phase.value,
            client_id,
            run_id,
            server_round,
            self.run_id,
            self.server_round,
            extra={"server_round": self.server_round, "client_id": client_id},
        )
        return False

    def _reject(self, client_id: ClientId, reason: str) -> None:
        self._rejected[client_id] = reason
        logger.warning(
            "fit: rejected the update of client %s in round %d: %s",
            client_id,
            self.server_round,
            reason,
            extra={"server_round": self.server_round, "client_id": client_id},
        )
        error = Error("invalid_update", reason, self.run_id, self.server_round)
        self._outgoing.append(Outgoing((client_id,), error))

    def _maybe_close_fit(self) -> None:
        if self._pending:
            return
        assert self._aggregator is not None
        if self._aggregator.count < self.config.min_clients:
            self.fail(
                f"round {self.server_round}: {self._aggregator.count} of "
                f"{len(self._selected)} selected clients sent a valid update, "
                f"min_clients is {self.config.min_clients}"
            )
            return
        self._new_params = self._aggregator.result()
        self._num_examples = self._aggregator.total_examples
        self._aggregator = None
        if self._central_evaluate is not None:
            loss, metrics = self._central_evaluate(self._new_params)
            self._test = (loss, metrics.get("accuracy"))
        if not self._federated_evaluate:
            self._finish_round()
            return
        self.phase = Phase.EVALUATE
        self._pending = set(self._reported)
        config = {**self._fit_config, "server_round": self.server_round}
        evaluate = Evaluate(self.run_id, self.server_round, config, self._new_params)
        self._outgoing.append(Outgoing(tuple(self._reported), evaluate))

    def _maybe_close_evaluate(self) -> None:
        if not self._pending:
            self._finish_round()

    def _finish_round(self) -> None:
        assert self._new_params is not None
        self.parameters = self._new_params
        loss = self._eval_loss.result().get("loss")
        record = RoundRecord(
            server_round=self.server_round,
            clients=tuple(sorted(self._reported)),
            num_examples=self._num_examples,
            fit_metrics=self._fit_metrics.result(),
            federated_loss=loss,
            federated_accuracy=self._eval_metrics.result().get("accuracy"),
            evaluated_clients=tuple(self._evaluated),
            test_loss=self._test[0],
            test_accuracy=self._test[1],
            dropped=tuple(self._dropped),
            rejected=dict(self._rejected),
            client_metrics=dict(self._client_metrics),
        )
        self._events.append(RoundFinished(record, self.parameters))
        logger.info(
            "round: %d of run %d finished with %d clients",
            self.server_round,
            self.run_id,
            record.num_clients,
            extra={"server_round": self.server_round, "run_id": self.run_id},
        )
        if self.server_round >= self.config.rounds:
            self.phase = Phase.DONE
            self._events.append(RunFinished())
        else:
            self.phase = Phase.IDLE
