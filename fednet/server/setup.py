"""What a run needs before its first round: schema, initial model, evaluation."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fednet.config import RunConfig
from fednet.exceptions import ConfigError, SchemaError
from fednet.fedopt import ServerState
from fednet.learning import models
from fednet.learning.datasets import load_builtin_test
from fednet.learning.trainers.builtin import BUILTIN
from fednet.learning.metrics import EvalStats, classification_stats
from fednet.learning.preprocess import Preprocess
from fednet.learning.schema import Schema, check_schema
from fednet.server.problem import check_positive, initial_params, problem_schema
from fednet.server.problem import with_target
from fednet.protocol import Hello
from fednet.buffered import BufferedMachine
from fednet.gossip import CAPABILITY_NEEDS
from fednet.gossiping import GossipMachine
from fednet.machine import RunMachine
from fednet.rounds import RoundMachine
from fednet.securemachine import SecureRoundMachine
from fednet.tally import CentralEvaluate
from fednet.server.store import Store
from fednet.server.summaries import run_preprocess
from fednet.server.warmstart import WarmStart, load_warm_start
from fednet.strategies import strategy_from_config
from fednet.typing import ClientId, Metrics, NDArrays

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSetup:
    """The fixed facts of a run: its data schema, start model and evaluators."""

    task: str
    schema: Schema | None
    parameters: NDArrays
    central_evaluate: CentralEvaluate | None
    federated_evaluate: bool
    scratch_dir: Path | None = None
    server_state: ServerState | None = None
    preprocess: Preprocess | None = None
    needs: tuple[str, ...] = ()  # client capabilities the mode needs (gossip)

    @property
    def schema_dict(self) -> dict[str, Any] | None:
        """Return the schema as stored with the run: preprocessing, problem."""
        if self.schema is None:
            return None
        stored = self.schema.to_dict()
        if self.preprocess is not None:
            stored["preprocess"] = self.preprocess.to_dict()
        stored["problem"] = "regression" if self.schema.regression else "classification"
        return stored

    @property
    def classes(self) -> tuple[str, ...] | None:
        """Return the run's class labels (None without a schema; () regression)."""
        return self.schema.classes if self.schema is not None else None

    def ineligibility(self, hello: Hello) -> str | None:
        """Return why a client cannot take part, or None if it can."""
        try:
            self.check_client(hello)
        except SchemaError as e:
            return str(e)
        return None

    def check_client(self, hello: Hello) -> None:
        """Raise SchemaError with a reason if a client cannot take part."""
        if missing := [n for n in self.needs if n not in hello.capabilities]:
            raise SchemaError(f"the run needs clients with the {missing[0]} capability"
                              f" ({CAPABILITY_NEEDS[missing[0]]})")
        if hello.task != self.task:
            raise SchemaError(
                f"the client holds {hello.task} data but the run trains on {self.task}"
            )
        if self.schema is None:
            return
        if hello.schema is None:
            raise SchemaError("the client announced no feature names or labels")
        check_schema(self.schema, Schema.from_dict(hello.schema))


def run_schema(
    config: RunConfig, stored: dict[str, Any] | None, hellos: Sequence[Hello]
) -> Schema | None:
    """Fix the run's schema: stored (resumed run), built-in, or agreed by CSV clients.

    CSV clients are grouped by feature names and which are categorical; the
    largest group (the earliest on a tie) sets the features and the union of
    its labels the classes.
    """
    if config.task == "synthetic":
        return None
    if stored is not None:
        return Schema.from_dict(stored)
    if config.task != "csv":
        return load_builtin_test(config.task)[2]
    schemas = []
    for hello in hellos:
        try:
            schemas.append(Schema.from_dict(hello.schema))
        except SchemaError as e:
            logger.warning("client %s sent an invalid schema: %s", hello.name, e)
    if not schemas:
        raise SchemaError("no connected client announced a valid CSV schema")
    groups = Counter(_columns(s) for s in schemas)
    columns = max(groups, key=lambda c: (groups[c], -_first(schemas, c)))
    group = [s for s in schemas if _columns(s) == columns]
    return problem_schema(config.problem, group)


def _columns(schema: Schema) -> tuple[tuple[str, ...], frozenset[str]]:
    return schema.feature_names, frozenset(schema.categorical)


def _first(
    schemas: Sequence[Schema], columns: tuple[tuple[str, ...], frozenset[str]]
) -> int:
    return next(i for i, s in enumerate(schemas) if _columns(s) == columns)


def prepare_run(
    store: Store,
    run_id: int,
    config: RunConfig,
    completed_rounds: int,
    hellos: Sequence[Hello],
    stored_schema: dict[str, Any] | None,
) -> RunSetup:
    """Build the RunSetup; load the checkpoint of a resumed run or initialise one.

    Blocking (loads data sets and files; reads the database only for a warm
    start's earlier run): call it from a worker thread. A warm-started run
    takes the earlier run's model, schema and preprocessing.

    Raises:
        SchemaError: if CSV clients announce no usable schema, or the warm
            start's model cannot be used (the reason as at launch).
        FileNotFoundError: if a resumed run's checkpoint is missing (its model,
            or the state of a strategy that keeps one).
    """
    warm = _warm_start(store, config) if not completed_rounds else None
    if warm is not None and stored_schema is None:
        stored_schema = warm.schema  # its schema and preprocessing, not new ones
    schema = run_schema(config, stored_schema, hellos)
    check_positive(config, schema)
    preprocess = with_target(  # built-in data sets come standardised by their recipe
        run_preprocess(schema, stored_schema, hellos, config)
        if config.task == "csv"
        else None,
        schema,
        hellos,
    )
    state: ServerState | None = None
    if completed_rounds:
        params = store.load_model(run_id, completed_rounds)
        stateful = config.mode == "gossip" or (  # gossip: the clients' models
            strategy_from_config(config).server_state() is not None)
        if stateful:
            state = store.load_server_state(run_id, completed_rounds)
        if params is None or (stateful and state is None):
            raise FileNotFoundError(
                f"checkpoint of run {run_id} round {completed_rounds} is missing"
            )
    elif warm is not None or schema is None or config.model in BUILTIN:
        params = initial_params(config, schema, preprocess) if warm is None else (
            warm.parameters)
        store.save_model(run_id, 0, params)
    else:  # a site's trainer: one eligible site gives them (server/runtrainer.py)
        params = []
    central: CentralEvaluate | None = None
    if config.task in ("digits", "breast_cancer") and config.model in BUILTIN:
        central = _central_evaluator(config)
    return RunSetup(
        task=config.task,
        schema=schema,
        parameters=params,
        central_evaluate=central,
        federated_evaluate=config.task != "synthetic",
        scratch_dir=_scratch_dir(store),
        server_state=state,
        preprocess=preprocess,
        needs=(("gossip",) if config.mode == "gossip" else ())
        + (("secagg",) if config.secure_aggregation else ()),
    )


def _warm_start(store: Store, config: RunConfig) -> WarmStart | None:
    """Return the model a warm-started run begins from (None for a cold start)."""
    if not config.warm_start:
        return None
    try:
        warm = load_warm_start(store, config)
    except ConfigError as e:
        raise SchemaError(f"warm start: {e.errors['warm_start']}") from None
    logger.info(
        "warm start: from the model of run %d round %d",
        warm.run_id,
        warm.server_round,
    )
    return warm


def build_machine(
    run_id: int, config: RunConfig, setup: RunSetup, completed_rounds: int,
    capabilities: Callable[[ClientId], tuple[str, ...]] = lambda client_id: (),
) -> RunMachine:
    """Return the machine that plays the run's mode from where it stands.

    ``capabilities`` tells a secure run's machine what each site announced.

    Raises:
        AggregationError: if a checkpointed strategy state does not fit the model.
    """
    if config.mode == "async":  # FedBuff (RunConfig allows fedavg, fedprox)
        return BufferedMachine(
            run_id=run_id,
            config=config,
            parameters=setup.parameters,
            classes=setup.classes,
            next_version=completed_rounds + 1,
            central_evaluate=setup.central_evaluate,
            federated_evaluate=setup.federated_evaluate,
            preprocess=setup.preprocess,
        )
    if config.mode == "gossip":  # no server aggregator (fedavg, fedprox training)
        return GossipMachine(
            run_id=run_id, config=config, parameters=setup.parameters,
            classes=setup.classes, state=setup.server_state,
            next_step=completed_rounds + 1, central_evaluate=setup.central_evaluate,
            federated_evaluate=setup.federated_evaluate, preprocess=setup.preprocess,
        )
    strategy = strategy_from_config(config, scratch_dir=setup.scratch_dir)
    if setup.server_state is not None:
        strategy.load_server_state(setup.server_state, setup.parameters)
    extra = {"capabilities": capabilities} if config.secure_aggregation else {}
    machine = SecureRoundMachine if config.secure_aggregation else RoundMachine
    return machine(
        **extra,
        run_id=run_id,
        config=config,
        strategy=strategy,
        parameters=setup.parameters,
        classes=setup.classes,
        rng=None,  # each round's sampling seeded by [seed, round]: resumable
        next_round=completed_rounds + 1,
        central_evaluate=setup.central_evaluate,
        federated_evaluate=setup.federated_evaluate,
        preprocess=setup.preprocess,
    )


def _scratch_dir(store: Store) -> Path:
    """Return ``<state dir>/tmp``, where robust aggregators hold a round's updates."""
    path = store.state_dir / "tmp"
    path.mkdir(exist_ok=True)
    return path


def _central_evaluator(config: RunConfig) -> CentralEvaluate:
    x_test, y_test, schema = load_builtin_test(config.task)
    num_classes = len(schema.classes)

    def evaluate(params: NDArrays) -> tuple[float, Metrics, EvalStats]:
        loss, accuracy = models.evaluate(
            config.model, params, x_test, y_test, num_classes=num_classes
        )
        proba = models.predict_proba(config.model, params, x_test)
        stats = classification_stats(y_test, proba, num_classes)
        return loss, {"accuracy": accuracy}, stats

    return evaluate
