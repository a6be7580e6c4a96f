"""ServerApp: FedAvg under Flower's SecAgg+ (LegacyContext + SecAggPlusWorkflow).

Selected with the run-config key ``secagg=true`` (see ``server_app``); the
SecAgg+ parameters default to those of Flower's secure-aggregation example
(``num-shares=3``, ``reconstruction-threshold=2``).
"""

from __future__ import annotations

import logging
from typing import Any

from flwr.app import Context
from flwr.common import ndarrays_to_parameters
from flwr.server import LegacyContext, ServerConfig
from flwr.server.strategy import FedAvg
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
from flwr.serverapp import Grid, ServerApp

from fednet_flower_app.serverrun import ServerRun

logger = logging.getLogger(__name__)

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run the workload's rounds with SecAgg+ and write the timeline."""
    config = context.run_config
    run = ServerRun.start(grid, config)
    workload, timeline = run.workload, run.timeline

    def evaluate_fn(
        server_round: int, params: list[Any], _: dict[str, Any]
    ) -> tuple[float, dict[str, Any]] | None:
        result = run.evaluate(server_round, lambda: params)
        return None if result is None else (result[0], {"accuracy": result[1]})

    strategy = FedAvg(
        fraction_fit=1.0,
        fraction_evaluate=0.0,
        min_fit_clients=workload.num_clients,
        min_evaluate_clients=0,
        min_available_clients=workload.num_clients,
        evaluate_fn=evaluate_fn,
        on_fit_config_fn=lambda server_round: {"server_round": server_round},
        initial_parameters=ndarrays_to_parameters(run.initial),
    )
    run.initial = []
    legacy = LegacyContext(
        context=context,
        config=ServerConfig(num_rounds=workload.rounds),
        strategy=strategy,
    )
    fit_workflow = SecAggPlusWorkflow(
        num_shares=int(config.get("num-shares", 3)),
        reconstruction_threshold=int(config.get("reconstruction-threshold", 2)),
    )
    DefaultWorkflow(fit_workflow=fit_workflow)(grid, legacy)
    timeline.write(str(config["result-path"]))
