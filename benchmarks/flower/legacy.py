"""Flower's legacy gRPC path: start_server and start_client with a NumPyClient.

Run inside the Flower environment (``benchmarks/.venv-flower``) with the
repository on PYTHONPATH; one process per role::

    python -m benchmarks.flower.legacy server --workload w1 --port 9080 --out s.json
    python -m benchmarks.flower.legacy client --workload w1 --port 9080 --client 3
"""

from __future__ import annotations

import argparse
import os
from typing import Any

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")

import flwr  # noqa: E402
from flwr.client import NumPyClient  # noqa: E402
from flwr.common import ndarrays_to_parameters  # noqa: E402
from flwr.server import ServerConfig, SimpleClientManager  # noqa: E402
from flwr.server.strategy import FedAvg  # noqa: E402

from fednet.bench import workloads  # noqa: E402
from benchmarks.flower.timeline import Timeline  # noqa: E402

MAX_MESSAGE_BYTES = 1 << 30  # above Flower's 512 MB default, for P=1e8 headroom
READY_TIMEOUT_S = 600.0


class BenchClient(NumPyClient):  # type: ignore[misc]
    """A NumPyClient that trains like a fednet client, or echoes for W2."""

    def __init__(self, workload: workloads.Workload, client_number: int) -> None:
        self.workload = workload
        self.client_number = client_number
        self.data = (
            None
            if workload.task == "synthetic"
            else workloads.load_client_data(workload, client_number)
        )

    def get_parameters(self, config: dict[str, Any]) -> list[Any]:
        """Never asked for: the server has initial parameters."""
        raise NotImplementedError("the server provides the initial parameters")

    def fit(
        self, parameters: list[Any], config: dict[str, Any]
    ) -> tuple[list[Any], int, dict[str, Any]]:
        """Train one round (W1) or return what was received plus an offset (W2)."""
        if self.data is None:
            return workloads.synthetic_update(parameters, self.client_number), 1, {}
        server_round = int(config.get("server_round", 0))
        return workloads.local_fit(
            self.workload, parameters, self.data, self.client_number, server_round
        )


def run_server(workload: workloads.Workload, port: int, out: str) -> None:
    """Run Flower's legacy server for ``workload`` and write its timeline to ``out``."""
    synthetic = workload.task == "synthetic"
    test_set = None if synthetic else workloads.load_test_set(workload)
    initial = workloads.initial_params(workload, test_set)
    manager = SimpleClientManager()
    timeline = Timeline(
        workload=workload.name, num_params=sum(int(p.size) for p in initial)
    )

    def wait_ready() -> None:
        if not manager.wait_for(workload.num_clients, timeout=int(READY_TIMEOUT_S)):
            raise RuntimeError(f"clients did not connect in {READY_TIMEOUT_S:g} s")

    def evaluate_fn(
        server_round: int, params: list[Any], config: dict[str, Any]
    ) -> tuple[float, dict[str, Any]] | None:
        score = (
            None
            if test_set is None
            else lambda: workloads.evaluate_global(workload, params, test_set)
        )
        result = timeline.evaluate(server_round, score, wait_ready)
        return None if result is None else (result[0], {"accuracy": result[1]})

    strategy = FedAvg(
        fraction_fit=1.0,
        fraction_evaluate=0.0,
        min_fit_clients=workload.num_clients,
        min_evaluate_clients=0,
        min_available_clients=workload.num_clients,
        evaluate_fn=evaluate_fn,
        on_fit_config_fn=lambda server_round: {"server_round": server_round},
        initial_parameters=ndarrays_to_parameters(initial),
    )
    del initial
    flwr.server.start_server(
        server_address=f"127.0.0.1:{port}",
        config=ServerConfig(num_rounds=workload.rounds),
        strategy=strategy,
        client_manager=manager,
        grpc_max_message_length=MAX_MESSAGE_BYTES,
    )
    timeline.write(out)


def run_client(workload: workloads.Workload, port: int, client_number: int) -> None:
    """Run one legacy Flower client process until the server says goodbye."""
    client = BenchClient(workload, client_number)
    flwr.client.start_client(
        server_address=f"127.0.0.1:{port}",
        client=client.to_client(),
        grpc_max_message_length=MAX_MESSAGE_BYTES,
        insecure=True,
        max_wait_time=READY_TIMEOUT_S,
    )


def main(argv: list[str] | None = None) -> int:
    """Parse the role and run it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=("server", "client"))
    parser.add_argument("--workload", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client", type=int, default=1, help="1-based number")
    parser.add_argument("--out", default="", help="server: timeline JSON path")
    args = parser.parse_args(argv)
    workload = workloads.get_workload(args.workload)
    if args.role == "server":
        run_server(workload, args.port, args.out)
    else:
        run_client(workload, args.port, args.client)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
