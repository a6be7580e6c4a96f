"""Frozen settings of the server and client, and the RunConfig of a session."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
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
)
# The field each strategy reads (docs/strategies.md); other strategies ignore it.
STRATEGY_FIELDS: dict[str, tuple[str, ...]] = {
    "proximal_mu": ("fedprox",),
    "trim_fraction": ("fedtrimmedavg",),
    "num_malicious": ("krum", "multikrum"),
    "clip_norm": ("fedavg_clipped",),
}

_Check = Callable[[Any], "str | None"]


def _int_range(lo: int, hi: int) -> _Check:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be an integer, got {value!r}"
        if not lo <= value <= hi:
            return f"must be between {lo} and {hi}, got {value}"
        return None

    return check


def _float_range(lo: float, hi: float, *, lo_open: bool = False) -> _Check:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be a number, got {value!r}"
        if not lo <= value <= hi:  # also NaN and infinities; exact for any int
            return f"must be between {lo:g} and {hi:g}, got {value!r}"
        if lo_open and value <= lo:
            return f"must be greater than {lo:g}, got {value!r}"
        return None

    return check


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
    "rounds": _int_range(1, 10_000),
    "clients_per_round": _int_range(0, 100_000),
    "min_clients": _int_range(1, 100_000),
    "local_epochs": _int_range(1, 1_000),
    "batch_size": _int_range(1, 1_000_000),
    "learning_rate": _float_range(0.0, 100.0, lo_open=True),
    "round_timeout_s": _float_range(0.0, 86_400.0, lo_open=True),
    "seed": _int_range(0, 2**32 - 1),
    "hidden_units": _int_range(1, 4096),
    "synthetic_params": _int_range(1, 500_000_000),
    "proximal_mu": _float_range(0.0, 1_000.0),
    "trim_fraction": _float_range(0.0, 0.49),
    "num_malicious": _int_range(0, 50_000),
    "clip_norm": _float_range(0.0, 1e6, lo_open=True),
}
_FLOATS = (
    "learning_rate",
    "round_timeout_s",
    "proximal_mu",
    "trim_fraction",
    "clip_norm",
)


@dataclass(frozen=True, kw_only=True)
class ServerSettings:
    """Settings of a coordinator process, built once in the CLI.

    ``max_message_bytes`` bounds a binary frame, a joined upload included;
    ``max_clients`` the client sockets open at once (more get HTTP 503);
    ``hello_timeout_s`` how long a new socket may take to say ``hello``.
    ``send_timeout_s`` how long one message may take to leave for a client (one
    that stops reading is dropped then).
    """

    host: str = "0.0.0.0"
    port: int = 5000
    state_dir: Path = Path("state")
    join_token: str | None = None
    admin_token: str | None = None
    heartbeat_s: float = 10.0
    max_message_bytes: int = 1 << 30
    web_dir: Path | None = None
    resume: bool = True
    max_clients: int = 10_000
    hello_timeout_s: float = 10.0
    send_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        errors: dict[str, str] = {}
        if not 0 <= self.port <= 65535:
            errors["port"] = f"must be between 0 and 65535, got {self.port}"
        if self.heartbeat_s <= 0:
            errors["heartbeat_s"] = f"must be positive, got {self.heartbeat_s}"
        if self.max_message_bytes < 1024:
            errors["max_message_bytes"] = "must be at least 1024"
        if msg := _int_range(1, 1_000_000)(self.max_clients):
            errors["max_clients"] = msg
        if msg := _float_range(0.0, 3600.0, lo_open=True)(self.hello_timeout_s):
            errors["hello_timeout_s"] = msg
        if msg := _float_range(0.0, 86_400.0, lo_open=True)(self.send_timeout_s):
            errors["send_timeout_s"] = msg
        if errors:
            raise ConfigError(errors)


@dataclass(frozen=True, kw_only=True)
class ClientSettings:
    """Settings of a client process, built once in the CLI.

    A client holds either its own CSV file (``data`` + ``label_column``) or a
    slice of a built-in dataset (``dataset`` + ``partition`` = (i, n), 1-based).
    """

    server: str = "ws://localhost:5000/ws"
    name: str = "client"
    data: Path | None = None
    label_column: str | None = None
    dataset: str | None = None
    partition: tuple[int, int] = (1, 1)
    alpha: float | None = None
    seed: int = 0
    val_fraction: float = 0.2
    join_token: str | None = None
    host: str = "0.0.0.0"
    port: int = 5001
    heartbeat_s: float = 10.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    max_retries: int | None = None
    max_message_bytes: int = 1 << 30

    def __post_init__(self) -> None:
        errors: dict[str, str] = {}
        if (self.data is None) == (self.dataset is None):
            errors["data"] = "give exactly one of --data FILE or --dataset NAME"
        if self.data is not None and not self.label_column:
            errors["label_column"] = "--label-column is required with --data"
        if self.dataset is not None and self.dataset not in TASKS[:2] + TASKS[3:]:
            errors["dataset"] = (
                f"must be one of digits, breast_cancer, synthetic, got {self.dataset!r}"
            )
        i, n = self.partition
        if not 1 <= i <= n:
            errors["partition"] = f"must be i/n with 1 <= i <= n, got {i}/{n}"
        if self.alpha is not None and not self.alpha > 0:
            errors["alpha"] = f"must be positive, got {self.alpha}"
        if not 0.0 < self.val_fraction < 0.9:
            errors["val_fraction"] = f"must be in (0, 0.9), got {self.val_fraction}"
        if not self.server.startswith(("ws://", "wss://")):
            errors["server"] = f"must be a ws:// or wss:// URL, got {self.server!r}"
        if not 0 <= self.port <= 65535:
            errors["port"] = f"must be between 0 and 65535, got {self.port}"
        for name in ("backoff_initial_s", "backoff_max_s"):
            if not getattr(self, name) > 0:
                errors[name] = f"must be positive, got {getattr(self, name)}"
        if errors:
            raise ConfigError(errors)
