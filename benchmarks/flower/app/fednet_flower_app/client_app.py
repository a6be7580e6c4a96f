"""ClientApp: local training (W1) or echo plus offset (W2), as fednet clients do.

Each SuperNode is started with ``--node-config 'client-number=K'`` (1-based).
With the run-config key ``secagg=true`` the train messages go through Flower's
``secaggplus_mod`` and carry legacy FitIns/FitRes records.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.client.mod import secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.common import (
    Code,
    FitRes,
    Status,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.compat.common import recorddict_compat as compat

from fednet.bench import workloads

logger = logging.getLogger(__name__)


def secagg_when_asked(msg: Message, context: Context, call_next: Any) -> Message:
    """Apply ``secaggplus_mod`` on runs with ``secagg=true``, else pass through."""
    if bool(context.run_config.get("secagg", False)):
        return secaggplus_mod(msg, context, call_next)
    return call_next(msg, context)


app = ClientApp(mods=[secagg_when_asked])


@functools.lru_cache(maxsize=4)
def _client_data(name: str, client_number: int) -> Any:
    return workloads.load_client_data(workloads.get_workload(name), client_number)


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Return the updated model and the number of examples it was trained on."""
    workload = workloads.get_workload(str(context.run_config["workload"]))
    client_number = int(context.node_config["client-number"])
    if "fitins.parameters" in msg.content.array_records:
        return _train_legacy(msg, workload, client_number)
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


def _train_legacy(
    msg: Message, workload: workloads.Workload, client_number: int
) -> Message:
    # SecAgg+ sends legacy FitIns records and reads a FitRes back.
    fitins = compat.recorddict_to_fitins(msg.content, keep_input=False)
    params = parameters_to_ndarrays(fitins.parameters)
    if workload.task == "synthetic":
        new_params, num_examples = workloads.synthetic_update(params, client_number), 1
    else:
        server_round = int(fitins.config.get("server_round", 0))
        data = _client_data(workload.name, client_number)
        new_params, num_examples, _ = workloads.local_fit(
            workload, params, data, client_number, server_round
        )
    del params
    fitres = FitRes(
        status=Status(code=Code.OK, message=""),
        parameters=ndarrays_to_parameters(new_params),
        num_examples=num_examples,
        metrics={},
    )
    return Message(
        content=compat.fitres_to_recorddict(fitres, keep_input=False), reply_to=msg
    )
