"""ServerApp: FedAvg over the workload with Flower's Message API strategy.

The workload name and the path of the timeline JSON come from the run config
(``flwr run ... -c 'workload="w1" result-path="/tmp/t.json"'``); with
``secagg=true`` the round runs under SecAgg+ instead (:mod:`.secagg_server`).
"""

from __future__ import annotations

import logging
import time

from flwr.app import ArrayRecord, ConfigRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from fednet.bench import workloads
from benchmarks.flower.timeline import Timeline
from fednet_flower_app import secagg_server

logger = logging.getLogger(__name__)

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run the workload's rounds and write the timeline."""
    if bool(context.run_config.get("secagg", False)):
        secagg_server.main(grid, context)
        return
    workload = workloads.get_workload(str(context.run_config["workload"]))
    ready_timeout_s = float(context.run_config.get("ready-timeout", 600))
    synthetic = workload.task == "synthetic"
    test_set = None if synthetic else workloads.load_test_set(workload)
    initial = workloads.initial_params(workload, test_set)
    timeline = Timeline(
        workload=workload.name, num_params=sum(int(p.size) for p in initial)
    )

    def wait_ready() -> None:
        deadline = time.monotonic() + ready_timeout_s
        while len(list(grid.get_node_ids())) < workload.num_clients:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nodes did not connect in {ready_timeout_s:g} s")
            time.sleep(0.05)

    def evaluate_fn(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        def score() -> tuple[float, float]:
            assert test_set is not None
            params = arrays.to_numpy_ndarrays()
            return workloads.evaluate_global(workload, params, test_set)

        scorer = None if test_set is None else score
        result = timeline.evaluate(server_round, scorer, wait_ready)
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
        initial_arrays=ArrayRecord(initial, keep_input=False),
        num_rounds=workload.rounds,
        train_config=ConfigRecord({"workload": workload.name}),
        evaluate_fn=evaluate_fn,
    )
    timeline.write(str(context.run_config["result-path"]))
