"""Frozen settings of the server and client processes, built once in the CLI."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from fednet.checks import float_range, int_range
from fednet.config import TASKS
from fednet.exceptions import ConfigError


def _tls_pair_errors(cert: Path | None, key: Path | None) -> dict[str, str]:
    """Return an error unless a certificate and its key come together."""
    if (cert is None) != (key is None):
        name = "tls_key" if key is None else "tls_cert"
        return {name: "--tls-cert and --tls-key go together"}
    return {}


@dataclass(frozen=True, kw_only=True)
class ServerSettings:
    """Settings of a coordinator process, built once in the CLI.

    ``max_message_bytes`` bounds a binary frame, a joined upload included;
    ``max_clients`` the client sockets open at once (more get HTTP 503);
    ``hello_timeout_s`` how long a new socket may take to say ``hello``.
    ``send_timeout_s`` how long one message may take to leave for a client (one
    that stops reading is dropped then).

    Security (docs/security.md): ``tls_cert``/``tls_key`` serve https and wss,
    ``tls_client_ca`` asks clients for a certificate from that CA (mutual
    TLS); ``viewer_token`` lets people read without the admin token;
    ``insecure`` allows a non-loopback address without TLS or credentials.
    """

    host: str = "127.0.0.1"
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
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    viewer_token: str | None = None
    insecure: bool = False
    test_secagg_swap_key: bool = False  # TEST ONLY: a key-swapping coordinator

    @property
    def tls(self) -> bool:
        """Return whether the server speaks https and wss."""
        return self.tls_cert is not None

    @property
    def loopback(self) -> bool:
        """Return whether the server is reachable from this machine only."""
        return is_loopback(self.host)

    def exposure(self) -> list[str]:
        """Return what a non-loopback server lacks: TLS, an admin token.

        Without an admin token no credential at all is required of readers,
        writers or (without a join token or registered sites) clients. Empty
        on loopback, or when nothing is missing.
        """
        if self.loopback:
            return []
        missing = []
        if not self.tls:
            missing.append("TLS (--tls-cert and --tls-key)")
        if self.admin_token is None:
            missing.append("an admin token (--admin-token)")
        return missing

    def __post_init__(self) -> None:
        errors: dict[str, str] = {}
        if not 0 <= self.port <= 65535:
            errors["port"] = f"must be between 0 and 65535, got {self.port}"
        errors.update(_tls_pair_errors(self.tls_cert, self.tls_key))
        if self.tls_client_ca is not None and self.tls_cert is None:
            errors["tls_client_ca"] = "mutual TLS needs --tls-cert and --tls-key"
        tokens = [self.admin_token, self.viewer_token, self.join_token]
        if self.viewer_token is not None and self.viewer_token in tokens[::2]:
            errors["viewer_token"] = "must differ from the admin and join tokens"
        if self.heartbeat_s <= 0:
            errors["heartbeat_s"] = f"must be positive, got {self.heartbeat_s}"
        if self.max_message_bytes < 1024:
            errors["max_message_bytes"] = "must be at least 1024"
        if msg := int_range(1, 1_000_000)(self.max_clients):
            errors["max_clients"] = msg
        if msg := float_range(0.0, 3600.0, lo_open=True)(self.hello_timeout_s):
            errors["hello_timeout_s"] = msg
        if msg := float_range(0.0, 86_400.0, lo_open=True)(self.send_timeout_s):
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
    min_count: int = 10
    join_token: str | None = None
    site_token: str | None = None
    ca_file: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    host: str = "0.0.0.0"
    port: int = 5001
    heartbeat_s: float = 10.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    max_retries: int | None = None
    max_message_bytes: int = 1 << 30
    fit_delay_s: float = 0.0  # tests and benchmarks: a slow site
    exit_after_masked: bool = False  # tests: a site that dies mid secure round
    # with tls_cert: sign secure rounds but do not verify (docs/privacy.md)
    secagg_trust_coordinator: bool = False
    # --trainer values: module:attribute or name=module:attribute (docs/models.md)
    trainers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        errors: dict[str, str] = {}
        if not 0 <= self.fit_delay_s <= 86_400:
            errors["fit_delay_s"] = f"must be 0-86400, got {self.fit_delay_s}"
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
        if not 1 <= self.min_count <= 1_000_000:
            errors["min_count"] = f"must be in [1, 1000000], got {self.min_count}"
        if not self.server.startswith(("ws://", "wss://")):
            errors["server"] = f"must be a ws:// or wss:// URL, got {self.server!r}"
        errors.update(_tls_pair_errors(self.tls_cert, self.tls_key))
        if not 0 <= self.port <= 65535:
            errors["port"] = f"must be between 0 and 65535, got {self.port}"
        for name in ("backoff_initial_s", "backoff_max_s"):
            if not getattr(self, name) > 0:
                errors[name] = f"must be positive, got {getattr(self, name)}"
        if errors:
            raise ConfigError(errors)


def is_loopback(host: str) -> bool:
    """Return whether ``host`` (an address to bind) is on loopback only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
