"""ServerApp: FedAvg over the workload with Flower's Message API strategy.

The workload name and the path of the timeline JSON come from the run config
(``flwr run ... -c 'workload="w1" result-path="/tmp/t.json"'``); with
``secagg=true`` the round runs under SecAgg+ instead (:mod:`.secagg_server`).
"""

from __future__ import annotations

import logging

from flwr.app import ArrayRecord, ConfigRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from fednet_flower_app import secagg_server
from fednet_flower_app.serverrun import ServerRun

logger = logging.getLogger(__name__)

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run the workload's rounds and write the timeline."""
    if bool(context.run_config.get("secagg", False)):
        secagg_server.main(grid, context)
        return
    run = ServerRun.start(grid, context.run_config)
    workload, timeline = run.workload, run.timeline

    def evaluate_fn(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        result = run.evaluate(server_round, arrays.to_numpy_ndarrays)
        if result is None:
            return None
        return MetricRecord({"loss": result[0], "accuracy": result[1]})

    strategy = FedAvg(
        fraction_train=1.0,
        fraction_evaluate=0.0,
        min_train_nodes=workload.num_clients,
        min_available_nodes=workload.num_clients,
    )
    strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(run.initial, keep_input=False),
        num_rounds=workload.rounds,
        train_config=ConfigRecord({"workload": workload.name}),
        evaluate_fn=evaluate_fn,
    )
    timeline.write(str(context.run_config["result-path"]))
