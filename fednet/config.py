"""The RunConfig of a session, its checks, and the value checks settings share."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

from fednet.exceptions import ConfigError

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
DP_AVAILABLE = ("off", "central")
"""The modes a run can use now: distributed DP waits for secure aggregation."""
DP_STRATEGIES = ("fedavg", "fedprox")
"""The strategies DP-FedAvg covers: robust and FedOpt aggregators are not
covered by its sensitivity analysis (docs/privacy.md)."""

IMPUTE = ("mean", "median")
"""How a missing numeric cell is filled: the pooled mean or the merged median."""

_Check = Callable[[Any], "str | None"]


def int_range(lo: int, hi: int) -> _Check:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be an integer, got {value!r}"
        if not lo <= value <= hi:
            return f"must be between {lo} and {hi}, got {value}"
        return None

    return check


def float_range(lo: float, hi: float, *, lo_open: bool = False) -> _Check:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be a number, got {value!r}"
        if not lo <= value <= hi:  # also NaN and infinities; exact for any int
            return f"must be between {lo:g} and {hi:g}, got {value!r}"
        if lo_open and value <= lo:
            return f"must be greater than {lo:g}, got {value!r}"
        return None

    return check


def _boolean(value: Any) -> str | None:
    if not isinstance(value, bool):
        return f"must be true or false, got {value!r}"
    return None


def _choice(options: tuple[str, ...]) -> _Check:
    def check(value: Any) -> str | None:
        if value not in options:
            return f"must be one of {', '.join(options)}, got {value!r}"
        return None

    return check


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
    # Shared preprocessing and warm start (docs/data.md).
    impute: str = "mean"
    missing_indicator: bool = False
    min_count: int = 10
    warm_start: int = 0

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
        if self.dp == "distributed":
            return {"dp": "distributed DP needs secure aggregation, not available yet"}
        if self.dp == "central" and self.strategy not in DP_STRATEGIES:
            return {
                "strategy": f"dp=central covers {' and '.join(DP_STRATEGIES)} only,"
                f" got {self.strategy}: robust and FedOpt aggregators are not"
                " covered by the DP analysis"
            }
        return {}

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
        return dataclasses.asdict(self)


_CHECKS: dict[str, _Check] = {
    "task": _choice(TASKS),
    "model": _choice(MODELS),
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
    "impute": _choice(IMPUTE),
    "missing_indicator": _boolean,
    "min_count": int_range(1, 1_000_000),
    "warm_start": int_range(0, 2**63 - 1),
}
_FLOATS = (
    "learning_rate",
    "round_timeout_s",
    "proximal_mu",
    "trim_fraction",
    "clip_norm",
    "server_learning_rate",
    "server_momentum",
    "beta_1",
    "beta_2",
    "tau",
    "dp_noise_multiplier",
    "dp_clip_norm",
    "dp_target_epsilon",
    "dp_delta",
)
