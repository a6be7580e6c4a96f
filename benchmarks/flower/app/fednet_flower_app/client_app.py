"""ClientApp: local training (W1) or echo plus offset (W2), as fednet clients do.

Each SuperNode is started with ``--node-config 'client-number=K'`` (1-based).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fednet.bench import workloads

logger = logging.getLogger(__name__)

app = ClientApp()


@functools.lru_cache(maxsize=4)
def _client_data(name: str, client_number: int) -> Any:
    return workloads.load_client_data(workloads.get_workload(name), client_number)


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Return the updated model and the number of examples it was trained on."""
    workload = workloads.get_workload(str(context.run_config["workload"]))
    client_number = int(context.node_config["client-number"])
    params = msg.content["arrays"].to_numpy_ndarrays()
    if workload.task == "synthetic":
        new_params, num_examples = workloads.synthetic_update(params, client_number), 1
    else:
        server_round = int(msg.content["config"]["server-round"])
        data = _client_data(workload.name, client_number)
        new_params, num_examples, _ = workloads.local_fit(
            workload, params, data, client_number, server_round
        )
    del params
    content = RecordDict(
        {
            "arrays": ArrayRecord(new_params, keep_input=False),
            "metrics": MetricRecord({"num-examples": num_examples}),
        }
    )
    return Message(content=content, reply_to=msg)
