"""The JSON Schema of a RunConfig: types, ranges, enums, defaults and descriptions.

The enums and defaults come from ``fednet.config``; the ranges are restated in
:data:`RUN_CONFIG_RANGES` (RunConfig's checks are closures), and a test checks
each bound against ``RunConfig.from_dict``. Rules over several fields are said
in the fields' descriptions.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fednet.config import DP_AVAILABLE, IMPUTE, MODES_AVAILABLE, STRATEGIES, TASKS
from fednet.config import RunConfig
from fednet.fields import INT64_MAX
from fednet.gossip import MAX_GOSSIP_PEERS
from fednet.learning.trainers.architecture import TRAINER_NAME
from fednet.learning.metrics import CLASSIFICATION, REGRESSION
from fednet.runmetrics import PROBLEMS
from fednet.secagg.rules import MAX_SHARES, THRESHOLD_SCHEMA

Schema = dict[str, Any]

# (minimum, maximum, whether the minimum itself is refused) of each numeric field.
RUN_CONFIG_RANGES: dict[str, tuple[float, float, bool]] = {
    "rounds": (1, 10_000, False),
    "clients_per_round": (0, 100_000, False),
    "min_clients": (1, 100_000, False),
    "local_epochs": (1, 1_000, False),
    "batch_size": (1, 1_000_000, False),
    "learning_rate": (0.0, 100.0, True),
    "round_timeout_s": (0.0, 86_400.0, True),
    "seed": (0, 2**32 - 1, False),
    "hidden_units": (1, 4096, False),
    "synthetic_params": (1, 500_000_000, False),
    "proximal_mu": (0.0, 1_000.0, False),
    "trim_fraction": (0.0, 0.49, False),
    "num_malicious": (0, 50_000, False),
    "clip_norm": (0.0, 1e6, True),
    "server_learning_rate": (0.0, 100.0, False),
    "server_momentum": (0.0, 0.9999, False),
    "beta_1": (0.0, 0.9999, False),
    "beta_2": (0.0, 0.9999, False),
    "tau": (0.0, 1.0, False),
    "dp_noise_multiplier": (0.0, 1_000.0, True),
    "dp_clip_norm": (0.0, 1e6, True),
    "dp_target_epsilon": (0.0, 1e6, False),
    "dp_delta": (0.0, 0.1, True),
    "buffer_size": (1, 100_000, False),
    "max_staleness": (0, 10_000, False),
    "max_concurrency": (0, 100_000, False),
    "gossip_peers": (1, MAX_GOSSIP_PEERS, False),
    "secagg_threshold": (0.5, MAX_SHARES, True),  # restated: THRESHOLD_SCHEMA
    "secagg_clip": (0.0, 1e6, True),
    "min_count": (1, 1_000_000, False),
    "warm_start": (0, INT64_MAX, False),
}
RUN_CONFIG_CHOICES: dict[str, tuple[str, ...]] = {
    "task": TASKS,
    "strategy": STRATEGIES,
    "dp": DP_AVAILABLE,  # distributed only with secure aggregation
    "problem": PROBLEMS,
    "selection_metric": ("", "loss", *CLASSIFICATION, *REGRESSION),
    "mode": MODES_AVAILABLE,
    "impute": IMPUTE,
}


def run_config_schema() -> Schema:
    """Return the schema of a RunConfig: types, ranges, enums and defaults."""
    defaults = RunConfig()
    properties: Schema = {}
    for field in dataclasses.fields(RunConfig):
        default = getattr(defaults, field.name)
        if field.name in RUN_CONFIG_CHOICES:
            choices = list(RUN_CONFIG_CHOICES[field.name])
            spec: Schema = {"type": "string", "enum": choices}
        elif field.name == "model":  # a trainer's name: built-in or a site's
            spec = {"type": "string", "pattern": f"^{TRAINER_NAME.pattern}$"}
        elif isinstance(default, bool):
            spec = {"type": "boolean"}
        elif field.name == "metrics":
            names = [*CLASSIFICATION, *REGRESSION]
            spec = {"type": "array", "items": {"type": "string", "enum": names},
                    "uniqueItems": True}
            default = list(default)
        elif isinstance(default, str):
            spec = {"type": "string", "maxLength": 256}
        else:
            lo, hi, lo_open = RUN_CONFIG_RANGES[field.name]
            kind = "number" if isinstance(default, float) else "integer"
            spec = {"type": kind, "minimum": lo, "maximum": hi}
            if lo_open:
                spec["exclusiveMinimum"] = True
        properties[field.name] = {**spec, "default": default}
    properties["secagg_threshold"] = THRESHOLD_SCHEMA
    properties["clients_per_round"]["description"] = (
        "0 (every eligible client), or at least min_clients"
    )
    properties["dp"]["description"] = (
        "central: DP-FedAvg, with strategy fedavg or fedprox only; distributed:"
        " noise added by the sites, with secure_aggregation only"
    )
    properties["dp_target_epsilon"]["description"] = "0: no budget"
    properties["problem"]["description"] = (
        "auto: regression when a site's label is a numeric target; digits and"
        " breast_cancer are classification only"
    )
    properties["metrics"]["description"] = (
        "empty: every metric of the problem; classification and regression"
        " metrics do not mix"
    )
    properties["selection_metric"]["description"] = (
        "what picks the best model; empty: accuracy, or r2 for regression"
    )
    properties["mode"]["description"] = (
        "async: FedBuff, rounds count model versions; with fedavg or fedprox"
        " only, no dp, buffer_size at most a non-zero max_concurrency; gossip:"
        " decentralised averaging, rounds count steps, fedavg or fedprox only, no"
        " dp; a step waits for gossip_peers + 1 clients"
    )
    properties["warm_start"]["description"] = (
        "0: none; else the id of a run whose last global model (and, for CSV,"
        " schema and preprocessing) this run starts from; refused (400) if it"
        " has no model or one that does not fit"
    )
    properties["min_count"]["description"] = (
        "CSV: count only sites suppressing counts below at least this"
    )
    return {
        "type": "object",
        "description": "Unset fields take their defaults; unknown fields are refused.",
        "properties": properties,
        "additionalProperties": False,
    }
