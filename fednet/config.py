"""The RunConfig of a session, its checks, and the value checks settings share."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from fednet.exceptions import ConfigError
from fednet.gossip import MAX_GOSSIP_PEERS
from fednet.learning.metrics import CLASSIFICATION, REGRESSION
from fednet.checks import boolean as _boolean
from fednet.checks import choice as _choice
from fednet.checks import Check, float_range, int_range, pattern, text
from fednet.learning.trainers.architecture import TRAINER_NAME
from fednet.runmetrics import PROBLEMS, metric_errors, metric_list
from fednet.secagg.rules import DEFAULT_CLIP, DEFAULT_THRESHOLD
from fednet.secagg.rules import check_threshold, secagg_errors

TASKS = ("digits", "breast_cancer", "csv", "synthetic")
MODELS = ("logreg", "mlp")
STRATEGIES = (
    "fedavg",
    "fedprox",
    "fedmedian",
    "fedtrimmedavg",
    "krum",
    "multikrum",
    "fedavg_clipped",
    "fedadam",
    "fedyogi",
    "fedadagrad",
    "fedavgm",
)
# The field each strategy reads (docs/strategies.md); other strategies ignore it.
STRATEGY_FIELDS: dict[str, tuple[str, ...]] = {
    "proximal_mu": ("fedprox",),
    "trim_fraction": ("fedtrimmedavg",),
    "num_malicious": ("krum", "multikrum"),
    "clip_norm": ("fedavg_clipped",),
    "server_learning_rate": ("fedadam", "fedyogi", "fedadagrad", "fedavgm"),
    "server_momentum": ("fedavgm",),
    "beta_1": ("fedadam", "fedyogi"),
    "beta_2": ("fedadam", "fedyogi"),
    "tau": ("fedadam", "fedyogi", "fedadagrad"),
}
DP_MODES = ("off", "central", "distributed")
DP_AVAILABLE = DP_MODES
"""The modes a run can use: distributed DP only with secure aggregation."""
DP_STRATEGIES = ("fedavg", "fedprox")
"""The strategies DP-FedAvg covers: robust and FedOpt aggregators are not
covered by its sensitivity analysis (docs/privacy.md)."""
MODES = ("sync", "async", "gossip")
MODES_AVAILABLE = MODES
ASYNC_STRATEGIES = ("fedavg", "fedprox")
"""The strategies FedBuff's buffered, staleness-weighted mean (and gossip's
local averaging, which has no server aggregator at all) replaces."""
MODE_FIELDS: dict[str, tuple[str, ...]] = {
    "buffer_size": ("async",),
    "max_staleness": ("async",),
    "max_concurrency": ("async",),
    "gossip_peers": ("gossip",),
}
"""The fields each run mode reads (the launch form shows them for it only)."""
IMPUTE = ("mean", "median")
"""How a missing numeric cell is filled: the pooled mean or the merged median."""


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """What one federated training session does (Flower's vocabulary).

    Build it with :meth:`from_dict` to validate untrusted input.
    """

    task: str = "digits"
    model: str = "logreg"
    strategy: str = "fedavg"
    rounds: int = 10
    clients_per_round: int = 0
    min_clients: int = 2
    local_epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 0.1
    round_timeout_s: float = 120.0
    seed: int = 0
    hidden_units: int = 64
    synthetic_params: int = 1000
    proximal_mu: float = 0.0
    trim_fraction: float = 0.2
    num_malicious: int = 0
    clip_norm: float = 1.0
    # FedOpt (docs/strategies.md): 0 takes Flower's default for the strategy.
    server_learning_rate: float = 0.0
    server_momentum: float = 0.0
    beta_1: float = 0.9
    beta_2: float = 0.99
    tau: float = 0.0
    # Differential privacy (docs/privacy.md): 0 target epsilon = no budget.
    dp: str = "off"
    dp_noise_multiplier: float = 1.0
    dp_clip_norm: float = 1.0
    dp_adaptive_clip: bool = False
    dp_target_epsilon: float = 0.0
    dp_delta: float = 1e-5
    # What a run predicts and how it is scored (docs/data.md#metrics).
    problem: str = "auto"
    metrics: tuple[str, ...] = ()
    selection_metric: str = ""
    positive_class: str = ""
    # Run mode (docs/strategies.md): async is FedBuff, rounds = model versions.
    mode: str = "sync"
    buffer_size: int = 10
    max_staleness: int = 10
    max_concurrency: int = 0
    # Shared preprocessing and warm start (docs/data.md).
    impute: str = "mean"
    missing_indicator: bool = False
    min_count: int = 10
    warm_start: int = 0
    # gossip (docs/strategies.md): peers' models each client averages per step.
    gossip_peers: int = 2
    # Secure aggregation (docs/privacy.md): threshold = a fraction in (0.5, 1]
    # of a round's sites or a count >= 2; clip = each delta coordinate's range.
    secure_aggregation: bool = False
    secagg_threshold: float = DEFAULT_THRESHOLD
    secagg_clip: float = DEFAULT_CLIP

    def __post_init__(self) -> None:
        errors = {
            name: msg
            for name, check in _CHECKS.items()
            if (msg := check(getattr(self, name))) is not None
        }
        if (
            not errors
            and self.clients_per_round
            and self.clients_per_round < self.min_clients
        ):
            errors["clients_per_round"] = (
                f"must be 0 (all) or at least min_clients ({self.min_clients}),"
                f" got {self.clients_per_round}"
            )
        if not errors:
            errors.update(self._strategy_errors())
            errors.update(self._privacy_errors())
            errors.update(metric_errors(self))
            errors.update(self._mode_errors())
            errors.update(secagg_errors(self))
        if errors:
            raise ConfigError(errors)

    def _strategy_errors(self) -> dict[str, str]:
        """Refuse too few clients per round for Krum's assumed attackers."""
        errors: dict[str, str] = {}
        if self.strategy in ("krum", "multikrum") and self.num_malicious:
            # Krum tolerates f attackers among n > 2f + 2 (Blanchard et al., 2017).
            floor = 2 * self.num_malicious + 3
            for name in ("min_clients", "clients_per_round"):
                value = getattr(self, name)
                if value and value < floor:
                    errors[name] = (
                        f"must be at least 2 * num_malicious + 3 ({floor}) for"
                        f" {self.strategy}, got {value}"
                    )
        return errors

    def _privacy_errors(self) -> dict[str, str]:
        """Refuse DP modes and strategies the DP-FedAvg analysis does not cover."""
        if self.dp == "distributed" and not self.secure_aggregation:
            return {"dp": "distributed DP needs secure aggregation"
                    " (secure_aggregation: true)"}
        if self.dp != "off" and self.strategy not in DP_STRATEGIES:
            return {
                "strategy": f"dp={self.dp} covers {' and '.join(DP_STRATEGIES)} only,"
                f" got {self.strategy}: robust and FedOpt aggregators are not"
                " covered by the DP analysis"
            }
        return {}

    def _mode_errors(self) -> dict[str, str]:
        """Refuse what FedBuff's buffered mean or gossip cannot combine with."""
        if self.mode == "gossip":
            return self._gossip_errors()
        if self.mode != "async":
            return {}
        if self.strategy not in ASYNC_STRATEGIES:
            return {
                "strategy": f"mode async aggregates with FedBuff's staleness-weighted"
                f" mean, which replaces {' and '.join(ASYNC_STRATEGIES)} only,"
                f" got {self.strategy}"
            }
        if self.dp != "off":
            return {"dp": "mode async does not support differential privacy yet"}
        if self.max_concurrency and self.buffer_size > self.max_concurrency:
            return {
                "buffer_size": f"must be at most max_concurrency"
                f" ({self.max_concurrency}), got {self.buffer_size}"
            }
        return {}

    def _gossip_errors(self) -> dict[str, str]:
        """Refuse server aggregators and dp: clients only average and train."""
        if self.strategy not in ASYNC_STRATEGIES:
            return {"strategy": "mode gossip has no server aggregator: clients"
                    f" average their peers' models, so only"
                    f" {' and '.join(ASYNC_STRATEGIES)} local training,"
                    f" got {self.strategy}"}
        if self.dp != "off":
            return {"dp": "mode gossip does not support differential privacy"}
        return {}  # a step waits for gossip_peers + 1 clients (fednet.gossiping)

    @classmethod
    def from_dict(cls, data: Any) -> RunConfig:
        """Validate a JSON object and build a RunConfig.

        Raises:
            ConfigError: with one message per unknown or invalid field.
        """
        if not isinstance(data, dict):
            raise ConfigError({"config": "must be a JSON object"})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = {k: "unknown field" for k in data if k not in names}
        values = {k: v for k, v in data.items() if k in names}
        if isinstance(values.get("metrics"), list):
            values["metrics"] = tuple(values["metrics"])
        for name in _FLOATS:
            # an int too large for a float stays an int, refused by its check
            if type(values.get(name)) is int and abs(values[name]) <= 2**53:
                values[name] = float(values[name])
        try:
            config = cls(**values)
        except ConfigError as e:
            raise ConfigError({**unknown, **e.errors}) from None
        if unknown:
            raise ConfigError(unknown)
        return config

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form accepted by :meth:`from_dict`."""
        return {**dataclasses.asdict(self), "metrics": list(self.metrics)}


_CHECKS: dict[str, Check] = {
    "task": _choice(TASKS),
    "model": pattern(TRAINER_NAME, "a trainer name (logreg, mlp or a site's: 1 to"
                     " 128 letters, digits or _.-)"),
    "strategy": _choice(STRATEGIES),
    "rounds": int_range(1, 10_000),
    "clients_per_round": int_range(0, 100_000),
    "min_clients": int_range(1, 100_000),
    "local_epochs": int_range(1, 1_000),
    "batch_size": int_range(1, 1_000_000),
    "learning_rate": float_range(0.0, 100.0, lo_open=True),
    "round_timeout_s": float_range(0.0, 86_400.0, lo_open=True),
    "seed": int_range(0, 2**32 - 1),
    "hidden_units": int_range(1, 4096),
    "synthetic_params": int_range(1, 500_000_000),
    "proximal_mu": float_range(0.0, 1_000.0),
    "trim_fraction": float_range(0.0, 0.49),
    "num_malicious": int_range(0, 50_000),
    "clip_norm": float_range(0.0, 1e6, lo_open=True),
    "server_learning_rate": float_range(0.0, 100.0),
    "server_momentum": float_range(0.0, 0.9999),
    "beta_1": float_range(0.0, 0.9999),
    "beta_2": float_range(0.0, 0.9999),
    "tau": float_range(0.0, 1.0),
    "dp": _choice(DP_MODES),
    "dp_noise_multiplier": float_range(0.0, 1_000.0, lo_open=True),
    "dp_clip_norm": float_range(0.0, 1e6, lo_open=True),
    "dp_adaptive_clip": _boolean,
    "dp_target_epsilon": float_range(0.0, 1e6),
    "dp_delta": float_range(0.0, 0.1, lo_open=True),
    "problem": _choice(PROBLEMS),
    "metrics": metric_list,
    "selection_metric": _choice(("", "loss", *CLASSIFICATION, *REGRESSION)),
    "positive_class": text(256),
    "mode": _choice(MODES),
    "buffer_size": int_range(1, 100_000),
    "max_staleness": int_range(0, 10_000),
    "max_concurrency": int_range(0, 100_000),
    "impute": _choice(IMPUTE),
    "missing_indicator": _boolean,
    "min_count": int_range(1, 1_000_000),
    "warm_start": int_range(0, 2**63 - 1),
    "gossip_peers": int_range(1, MAX_GOSSIP_PEERS),
    "secure_aggregation": _boolean,
    "secagg_threshold": check_threshold,
    "secagg_clip": float_range(0.0, 1e6, lo_open=True),
}
_FLOATS = tuple(  # an integer given for one of these is read as a float
    f.name for f in dataclasses.fields(RunConfig) if type(f.default) is float
)
