"""How ``fednet run`` reads each RunConfig field from its flag or ``FEDNET_RUN_*``.

RunConfig itself checks the values; these only convert the text.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

from fednet.config import RunConfig
from fednet.fields import check_table


def parse_bool(text: str) -> bool:
    """Read an on/off value (1/0, true/false, yes/no, on/off)."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"not a boolean: {text!r}")


def names(text: str) -> tuple[str, ...]:
    """Read a comma-separated list (``--metrics accuracy,auroc``)."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


# The converter of each RunConfig field's flag; RunConfig itself checks values.
RUN_FLAG_TYPES: dict[str, Callable[[str], Any]] = {
    "task": str,
    "model": str,
    "strategy": str,
    "rounds": int,
    "clients_per_round": int,
    "min_clients": int,
    "local_epochs": int,
    "batch_size": int,
    "learning_rate": float,
    "round_timeout_s": float,
    "seed": int,
    "hidden_units": int,
    "synthetic_params": int,
    "proximal_mu": float,
    "trim_fraction": float,
    "num_malicious": int,
    "clip_norm": float,
    "server_learning_rate": float,
    "server_momentum": float,
    "beta_1": float,
    "beta_2": float,
    "tau": float,
    "dp": str,
    "dp_noise_multiplier": float,
    "dp_clip_norm": float,
    "dp_adaptive_clip": parse_bool,
    "dp_target_epsilon": float,
    "dp_delta": float,
    "problem": str,
    "metrics": names,
    "selection_metric": str,
    "positive_class": str,
    "mode": str,
    "buffer_size": int,
    "max_staleness": int,
    "max_concurrency": int,
    "impute": str,
    "missing_indicator": parse_bool,
    "min_count": int,
    "warm_start": int,
    "gossip_peers": int,
    "secure_aggregation": parse_bool,
    "secagg_threshold": float,
    "secagg_clip": float,
}
check_table(RunConfig, RUN_FLAG_TYPES)
