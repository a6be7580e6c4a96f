"""What both ServerApps set up for a workload: its test set, model, timeline."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flwr.serverapp import Grid

from fednet.bench import workloads
from benchmarks.flower.timeline import Timeline


@dataclass
class ServerRun:
    """A run's workload, test set (None: synthetic), start model and timeline."""

    grid: Grid
    workload: workloads.Workload
    test_set: Any
    initial: list[Any]
    timeline: Timeline
    ready_timeout_s: float

    @classmethod
    def start(cls, grid: Grid, run_config: Any) -> ServerRun:
        """Read the run config's workload and prepare its model and timeline."""
        workload = workloads.get_workload(str(run_config["workload"]))
        synthetic = workload.task == "synthetic"
        test_set = None if synthetic else workloads.load_test_set(workload)
        initial = workloads.initial_params(workload, test_set)
        timeline = Timeline(
            workload=workload.name, num_params=sum(int(p.size) for p in initial)
        )
        timeout = float(run_config.get("ready-timeout", 600))
        return cls(grid, workload, test_set, initial, timeline, timeout)

    def wait_ready(self) -> None:
        """Wait until every node of the workload is connected."""
        deadline = time.monotonic() + self.ready_timeout_s
        while len(list(self.grid.get_node_ids())) < self.workload.num_clients:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"nodes did not connect in {self.ready_timeout_s:g} s"
                )
            time.sleep(0.05)

    def evaluate(
        self, server_round: int, params: Callable[[], list[Any]]
    ) -> tuple[float, float] | None:
        """Time the round and score ``params()`` on the test set (if any)."""
        test_set = self.test_set

        def score() -> tuple[float, float]:
            return workloads.evaluate_global(self.workload, params(), test_set)

        scorer = None if test_set is None else score
        return self.timeline.evaluate(server_round, scorer, self.wait_ready)
