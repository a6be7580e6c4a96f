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
from fednet.machine import Fold, Phase, RoundCheckpoint
from fednet.phased import LockstepMachine
from fednet.protocol import Fit, FitResult
from fednet.records import RunFinished
from fednet.replicas import MAX_REPLICA_BYTES, Replicas, ReplicaUpdate
from fednet.tally import CentralEvaluate, RoundTally, stats_reading
from fednet.typing import ClientId, NDArray, NDArrays

logger = logging.getLogger(__name__)


class GossipMachine(LockstepMachine):
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

    _LOGGER, _UNIT, _UPDATE = logger, "step", "model"

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
        super().__init__(
            run_id=run_id, config=config, parameters=parameters, classes=classes,
            next_round=next_step, central_evaluate=central_evaluate,
            federated_evaluate=federated_evaluate, preprocess=preprocess,
        )
        self.replicas = Replicas(parameters, max_replica_bytes)
        if state:
            self.replicas.load_state(state)
        self._updates: dict[ClientId, ReplicaUpdate] = {}
        self._incoming: dict[ClientId, NDArrays] = {}
        self._mean: NDArrays | None = None
        self._distance = 0.0

    @property
    def step(self) -> int:
        """Return the step in progress, or the last one played (``server_round``)."""
        return self.server_round

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
        self.server_round += 1
        peers = choose_peers(participants, self.config.gossip_peers,
                             self.config.seed, self.step)
        self._tally = RoundTally(tuple(participants), set(participants),
                                 **stats_reading(self.config, self._fit_inputs[0]))
        self._updates, self._incoming = {}, {}
        self.phase = Phase.FIT
        config = self._round_config()
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

    @property
    def clients_wanted(self) -> int:
        """Return ``min_clients``, at least k + 1, between steps; else 0."""
        if self.phase is not Phase.IDLE:
            return 0
        return max(self.config.min_clients, self.config.gossip_peers + 1)

    # -- internals ------------------------------------------------------------

    def _evaluate_config(self) -> FitConfig:
        return dataclasses.replace(self._round_config(), peer_models=0)

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
        self._evaluate(self._mean)

    def _clear_play(self) -> None:
        self._incoming = {}

    def _finish_play(self) -> None:
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
