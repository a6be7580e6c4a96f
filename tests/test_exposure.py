"""Insecure mode is explicit: a coordinator others can reach needs TLS and a token."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import trustme

from fednet import cli, commands
from fednet.settings import ServerSettings, is_loopback


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start every test without FEDNET_* variables from the outer environment."""
    import os

    for name in list(os.environ):
        if name.startswith("FEDNET_"):
            monkeypatch.delenv(name)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Record what ``web.run_app`` would have served, instead of serving."""
    from aiohttp import web

    seen: dict[str, Any] = {}

    def run_app(app: Any, **kwargs: Any) -> None:
        seen.update(kwargs, app=app)
        kwargs["loop"].close()

    monkeypatch.setattr(web, "run_app", run_app)
    return seen


def _server(tmp_path: Path, *argv: str) -> int:
    args = cli.build_parser().parse_args(
        ["server", "--state-dir", str(tmp_path), "--port", "0", *argv]
    )
    return commands.server_command(args)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("198.18.0.1", False),
        ("coordinator.example", False),
    ],
)
def test_loopback_is_only_what_this_machine_alone_reaches(
    host: str, loopback: bool
) -> None:
    """Addresses and names other machines may reach are not loopback."""
    assert is_loopback(host) is loopback


def test_exposure_names_what_a_reachable_server_lacks(tmp_path: Path) -> None:
    """Off loopback, TLS and an admin token are both required; on it, neither."""
    bare = ServerSettings(host="0.0.0.0")
    assert len(bare.exposure()) == 2
    assert "TLS" in bare.exposure()[0] and "admin" in bare.exposure()[1]
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    tls_only = ServerSettings(host="0.0.0.0", tls_cert=cert, tls_key=key)
    assert tls_only.exposure() == ["an admin token (--admin-token)"]
    secure = ServerSettings(
        host="0.0.0.0", tls_cert=cert, tls_key=key, admin_token="a" * 32
    )
    assert secure.exposure() == []
    assert ServerSettings(host="127.0.0.1").exposure() == []


def test_a_reachable_server_without_tls_or_tokens_exits_with_the_way_out(
    tmp_path: Path, served: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """`fednet server --host 0.0.0.0` alone refuses to start and says what to do."""
    assert _server(tmp_path, "--host", "0.0.0.0") == 2
    assert not served, "the server must not start"
    err = capsys.readouterr().err
    assert "refusing to serve 0.0.0.0" in err
    for hint in ("--host 127.0.0.1", "--insecure", "FEDNET_INSECURE=1", "TLS"):
        assert hint in err


def test_insecure_serves_anyway_and_says_so_loudly(
    tmp_path: Path, served: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """--insecure (or FEDNET_INSECURE=1) starts it, with a warning naming the gaps."""
    with caplog.at_level(logging.WARNING, logger="fednet.commands"):
        assert _server(tmp_path, "--host", "0.0.0.0", "--insecure") == 0
    assert served["host"] == "0.0.0.0" and served["ssl_context"] is None
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert "INSECURE" in warning and "TLS" in warning and "admin token" in warning


def test_insecure_from_the_environment(
    tmp_path: Path, served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """FEDNET_INSECURE=1 is the same switch for containers."""
    monkeypatch.setenv("FEDNET_INSECURE", "1")
    assert _server(tmp_path, "--host", "0.0.0.0") == 0
    assert served["host"] == "0.0.0.0"


def test_tls_and_an_admin_token_serve_a_reachable_address(
    tmp_path: Path, served: dict[str, Any]
) -> None:
    """With a certificate and an admin token no --insecure is needed; https is on."""
    ca = trustme.CA()
    leaf = ca.issue_cert("coordinator.example")
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    leaf.private_key_and_cert_chain_pem.write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    argv = ("--host", "0.0.0.0", "--tls-cert", str(cert), "--tls-key", str(key))
    assert _server(tmp_path, *argv, "--admin-token", "t" * 32) == 0
    assert served["ssl_context"] is not None


def test_a_key_that_does_not_match_its_certificate_exits_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A broken certificate pair is a configuration error, not a traceback."""
    monkeypatch.setattr(cli, "configure_logging", lambda level, fmt: None)
    ca = trustme.CA()
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    ca.issue_cert("a.example").cert_chain_pems[0].write_to_path(str(cert))
    ca.issue_cert("b.example").private_key_pem.write_to_path(str(key))
    argv = ["server", "--state-dir", str(tmp_path), "--tls-cert", str(cert)]
    code = cli.main([*argv, "--tls-key", str(key)])
    assert code == 2
    assert "tls_cert" in capsys.readouterr().err
