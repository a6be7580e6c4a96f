"""Sans-I/O gossip machine: decentralised averaging in steps, relayed by the server.

Each step, every client is sent its latest model and those of k random peers
(:mod:`fednet.gossip`); it averages them, trains, and sends its model back.
The coordinator keeps the clients' models (:mod:`fednet.replicas`) and only
averages them to evaluate their mean and record the step's consensus distance
(``fit_metrics``). ``server_round`` is the step; the clock is the driver's.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from fednet.config import RunConfig
from fednet.exceptions import RoundStateError
from fednet.fitconfig import FitConfig
from fednet.gossip import choose_peers, consensus_distance, mean_model
from fednet.learning.preprocess import Preprocess
from fednet.machine import Fold, MachineOutputs, MachineProgress, Phase, Wait
from fednet.machine import RoundCheckpoint
from fednet.protocol import Error, Evaluate, EvaluateResult, Fit, FitResult
from fednet.records import RunFailed, RunFinished
from fednet.replicas import MAX_REPLICA_BYTES, Replicas, ReplicaUpdate
from fednet.rounds import ROUND_ATTEMPTS
from fednet.tally import CentralEvaluate, RoundTally, stats_reading
from fednet.typing import ClientId, NDArray, NDArrays

logger = logging.getLogger(__name__)


class GossipMachine(MachineOutputs):
    """Drive a gossip run: choose peers, relay models, keep replicas, record steps.

    Args:
        run_id: the run's id, echoed in every message.
        config: the run's configuration (``mode`` gossip).
        parameters: the start model (a resumed run: the clients' last mean),
            which a client without a model of its own starts from; a newcomer
            later in the run starts from its first peer's model instead.
        classes: the run's class labels (None for the synthetic task).
        state: the replicas of a resumed run (:meth:`Replicas.to_state`).
        next_step: the first step to play (resumed runs start later).
        central_evaluate: evaluates the clients' mean on a held-out set.
        federated_evaluate: ask clients to evaluate the clients' mean.
        preprocess: CSV sites' shared preprocessing, sent in every config.
        max_replica_bytes: the bound on the replicas kept.

    Raises:
        AggregationError: if ``state`` does not fit the model.
    """

    def __init__(
        self,
        *,
        run_id: int,
        config: RunConfig,
        parameters: NDArrays,
        classes: Sequence[str] | None,
        state: dict[str, NDArray] | None = None,
        next_step: int = 1,
        central_evaluate: CentralEvaluate | None = None,
        federated_evaluate: bool = True,
        preprocess: Preprocess | None = None,
        max_replica_bytes: int = MAX_REPLICA_BYTES,
    ) -> None:
        super().__init__()
        self.run_id, self.config, self.parameters = run_id, config, parameters
        self.step = next_step - 1
        self.phase = Phase.IDLE if next_step <= config.rounds else Phase.DONE
        self._fit_inputs = (None if classes is None else tuple(classes), preprocess)
        self._central_evaluate = central_evaluate
        self._federated_evaluate = federated_evaluate
        self.replicas = Replicas(parameters, max_replica_bytes)
        if state:
            self.replicas.load_state(state)
        self._tally = RoundTally()
        self._updates: dict[ClientId, ReplicaUpdate] = {}
        self._incoming: dict[ClientId, NDArrays] = {}
        self._mean: NDArrays | None = None
        self._distance = 0.0
        self._attempt = 0

    # -- inputs ---------------------------------------------------------------

    def clients_available(self, available: Sequence[ClientId]) -> None:
        """Start the next step when idle (the driver's entry point)."""
        if self.phase is Phase.IDLE:
            self.start_step(available)

    def start_step(self, available: Sequence[ClientId]) -> None:
        """Send every participant its model and its peers' (one ``fit`` each).

        Raises:
            RoundStateError: mid-step, after the run, or too few clients.
        """
        if self.phase is not Phase.IDLE:
            raise RoundStateError(f"cannot start a step in phase {self.phase.value}")
        needed = self.clients_wanted
        if (capacity := self.replicas.capacity) < needed:
            return self.fail(f"gossip keeps at most {capacity} models of this size"
                             f" (MAX_REPLICA_BYTES), {needed} are needed")
        participants = self.replicas.participants(available)
        if len(participants) < needed:
            raise RoundStateError(f"{len(participants)} clients available, a step"
                                  f" needs {needed}")
        self.step += 1
        peers = choose_peers(participants, self.config.gossip_peers,
                             self.config.seed, self.step)
        self._tally = RoundTally(tuple(participants), set(participants),
                                 **stats_reading(self.config, self._fit_inputs[0]))
        self._updates, self._incoming = {}, {}
        self.phase = Phase.FIT
        config = self._config()
        for client in participants:
            arrays = self.replicas.relay(client, peers[client])
            self._send((client,), Fit(self.run_id, self.step, config, arrays))
        self._log(logging.INFO, "fit: step %d of run %d sent to %d clients, %d peers"
                  " each", self.step, self.run_id, len(participants),
                  self.config.gossip_peers)

    def accept_update(self, client_id: ClientId, result: FitResult) -> Fold | None:
        """Return a Fold (validate and copy the model) if the step waits for it."""
        if not self._expects(client_id, result.run_id, result.server_round, Phase.FIT):
            return None
        self._tally.pending.discard(client_id)
        self._tally.folding.add(client_id)
        update = self._updates[client_id] = ReplicaUpdate(self.parameters)
        return Fold(client_id, result, update)

    def update_folded(self, fold: Fold) -> None:
        """Keep a client's new model, or reject it with the reason."""
        if fold.client_id not in self._tally.folding:
            raise RoundStateError(f"no update of {fold.client_id} is being folded")
        self._tally.folding.discard(fold.client_id)
        update = self._updates.pop(fold.client_id)
        if fold.error is None and update.model is not None:
            self._tally.add_fit(fold.client_id, fold.result)
            self._tally.num_examples += fold.result.num_examples
            self._incoming[fold.client_id] = update.model
        else:
            self._reject(fold.client_id, fold.error or "no model")
        self._maybe_close()

    def evaluate_received(self, client_id: ClientId, result: EvaluateResult) -> None:
        """Take a client's evaluation of the clients' mean."""
        if self._expects(client_id, result.run_id, result.server_round, Phase.EVALUATE):
            self._tally.pending.discard(client_id)
            if refused := self._tally.add_evaluation(client_id, result):
                self._reject(client_id, refused)
            self._maybe_close()

    def client_left(self, client_id: ClientId) -> None:
        """Drop a disconnected client from the step; its replica is kept."""
        if client_id not in self._tally.pending:
            return
        self._tally.pending.discard(client_id)
        self._log(logging.INFO, "%s: client %s left step %d", self.phase.value,
                  client_id, self.step, client_id=client_id)
        if self.phase is Phase.FIT:
            self._tally.dropped.append(client_id)
        self._maybe_close()

    def timed_out(self) -> None:
        """Close the current phase with whatever has arrived."""
        gone = self._tally.drop_pending()
        if self.phase is Phase.FIT:
            self._tally.dropped.extend(gone)
        self._maybe_close()

    def fail(self, reason: str) -> None:
        """End the run with a reason (e.g. stopped, or no clients in time)."""
        if self.phase is not Phase.DONE:
            self._end(RunFailed(reason))

    @property
    def done(self) -> bool:
        """Return whether the run is over."""
        return self.phase is Phase.DONE

    @property
    def clients_wanted(self) -> int:
        """Return ``min_clients``, at least k + 1, between steps; else 0."""
        if self.phase is not Phase.IDLE:
            return 0
        return max(self.config.min_clients, self.config.gossip_peers + 1)

    @property
    def wait(self) -> Wait | None:
        """Return the phase in progress with the round timeout, if any."""
        if self.phase not in (Phase.FIT, Phase.EVALUATE):
            return None
        play = f" (play {self._attempt + 1})" if self._attempt else ""
        return Wait(f"{self.phase.value}: step {self.step}{play}",
                    self.config.round_timeout_s)

    def progress(self) -> MachineProgress:
        """Return the phase, step and clients of the step in progress."""
        return MachineProgress(
            phase=self.phase.value,
            server_round=self.step,
            selected=self._tally.selected,
            reported=tuple(self._tally.reported),
            pending=tuple(sorted(self._tally.pending | self._tally.folding)),
        )

    # -- internals ------------------------------------------------------------

    def _config(self) -> FitConfig:
        return FitConfig.for_round(self.config, self.step, *self._fit_inputs)

    def _expects(
        self, client_id: ClientId, run_id: int, server_round: int, phase: Phase
    ) -> bool:
        if (run_id, server_round) == (self.run_id, self.step) and (
            self.phase is phase and client_id in self._tally.pending
        ):
            return True
        self._log(logging.WARNING, "%s: ignored a result of client %s for run %d"
                  " step %d (late or duplicate)", phase.value, client_id, run_id,
                  server_round, client_id=client_id)
        return False

    def _reject(self, client_id: ClientId, reason: str) -> None:
        self._tally.rejected[client_id] = reason
        self._log(logging.WARNING, "fit: rejected the model of client %s in step %d:"
                  " %s", client_id, self.step, reason, client_id=client_id)
        self._send((client_id,), Error("invalid_update", reason, self.run_id,
                                       self.step))

    def _maybe_close(self) -> None:
        if self._tally.waiting:
            return
        if self.phase is Phase.FIT:
            self._close_fit()
        elif self.phase is Phase.EVALUATE:
            self._finish_step()

    def _close_fit(self) -> None:
        """Keep the step's models; measure, evaluate and record their mean."""
        count = len(self._incoming)
        if count < self.config.min_clients:
            self._fall_short(f"step {self.step}: {count} of"
                             f" {len(self._tally.selected)} clients sent a valid"
                             f" model, min_clients is {self.config.min_clients}")
            return
        self.replicas.keep(self._incoming)
        models = [self._incoming[c] for c in sorted(self._incoming)]
        distance = consensus_distance(models)
        self._distance = distance
        self._mean = mean_model(models)
        if self._central_evaluate is not None:
            self._tally.set_test(*self._central_evaluate(self._mean))
        if not self._federated_evaluate:
            self._finish_step()
            return
        self.phase = Phase.EVALUATE
        reported = tuple(self._tally.reported)
        self._tally.pending = set(reported)
        config = dataclasses.replace(self._config(), peer_models=0)
        self._send(reported, Evaluate(self.run_id, self.step, config, self._mean))

    def _fall_short(self, why: str) -> None:
        self._attempt += 1
        if self._attempt >= ROUND_ATTEMPTS:
            self.fail(f"{why} ({self._attempt} attempts)")
            return
        self._log(logging.WARNING, "%s; playing the step again (attempt %d of %d)",
                  why, self._attempt + 1, ROUND_ATTEMPTS)
        self.step -= 1
        self._incoming, self.phase = {}, Phase.IDLE

    def _finish_step(self) -> None:
        assert self._mean is not None
        self._attempt = 0
        record = self._tally.record(self.step)
        distance = self._distance
        record = dataclasses.replace(
            record, fit_metrics={**record.fit_metrics, "consensus_distance": distance}
        )
        self.parameters, self._mean = self._mean, None
        self._record(RoundCheckpoint(record, self.parameters,
                                     server_state=self.replicas.to_state()))
        self._log(logging.INFO, "step: %d of run %d finished with %d clients,"
                  " consensus distance %.4g", self.step, self.run_id,
                  record.num_clients, distance)
        if self.step >= self.config.rounds:
            self._end(RunFinished())
        else:
            self.phase = Phase.IDLE

    def _end(self, event: RunFinished | RunFailed) -> None:
        self.phase = Phase.DONE
        self._record(event)

    def _log(self, level: int, msg: str, *args: object, client_id: str = "") -> None:
        extra = {"server_round": self.step, "client_id": client_id}
        logger.log(level, msg, *args, extra={**extra, "run_id": self.run_id})
