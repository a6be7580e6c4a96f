"""Every FEDNET_* variable the user data writes is one `fednet` accepts."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Any

import pytest

from fednet import cli, commands
from fednet.settings import ClientSettings, ServerSettings
from tests.deploy.boot import IMAGES, SCRIPTS, Sandbox

IDS = [f"{stack}/{name}" for stack, name, _, _ in SCRIPTS]


def _env_names(command: str) -> set[str]:
    """Return the FEDNET_* variables the ``command`` subcommand reads."""
    parser = cli.build_parser()
    sub = next(
        a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    )
    helps = (action.help or "" for action in sub.choices[command]._actions)
    return {m.group(1) for h in helps if (m := re.search(r"\(env (\w+)\)$", h))}


def _settings(command: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run ``fednet <command>`` from the environment up to its settings."""
    built: list[Any] = []
    if command == "server":
        monkeypatch.setattr("fednet.runtime.raise_fd_limit", lambda: None)
        monkeypatch.setattr("fednet.runtime.new_event_loop", lambda: None)
        monkeypatch.setattr("fednet.server.app.create_app", built.append)
        monkeypatch.setattr("aiohttp.web.run_app", lambda *a, **k: None)
        # The certificate is made at boot on the instance, not here.
        monkeypatch.setattr("fednet.commands.server_ssl_context", lambda *a: None)
    else:
        monkeypatch.setattr(
            "fednet.client.main.run_client", lambda s, *a: built.append(s) or 0
        )
    args = cli.build_parser().parse_args([command])
    assert commands.COMMANDS[command](args) == 0
    (settings,) = built
    return settings


@pytest.mark.parametrize("csv", [False, True], ids=["builtin", "csv"])
@pytest.mark.parametrize(("stack", "name", "target", "role"), SCRIPTS, ids=IDS)
def test_env_file_variables_are_flags_of_the_command_and_build_settings(
    templates: dict[str, dict[str, Any]],
    cfn: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stack: str,
    name: str,
    target: str,
    role: str,
    csv: bool,
) -> None:
    """Each variable names a flag of `fednet server|client`; settings validate."""
    data = {"ClientDataset": "csv", "ClientDataBucket": "b", "ClientDataKey": "k.csv"}
    sandbox = Sandbox(tmp_path, parameters={**IMAGES, **(data if csv else {})})
    boot = sandbox.boot(templates[stack], cfn.user_data_bodies(templates[stack])[name])
    assert boot.returncode == 0, boot.console
    env = boot.env_file(f"{role}.env")
    for key in [k for k in os.environ if k.startswith("FEDNET_")]:
        monkeypatch.delenv(key)

    assert set(env) <= _env_names(role)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = _settings(role, monkeypatch)

    if role == "server":
        assert isinstance(settings, ServerSettings)
        assert settings.admin_token == env["FEDNET_ADMIN_TOKEN"]
        assert settings.port == 5000
        # 0.0.0.0 with TLS and an admin token: nothing missing, nothing insecure.
        assert settings.host == "0.0.0.0" and settings.exposure() == []
        assert settings.tls and not settings.insecure
    else:
        assert isinstance(settings, ClientSettings)
        assert settings.server == env["FEDNET_SERVER"]
        assert settings.port == 5001
        assert (settings.data is not None) == csv
    assert settings.join_token == env["FEDNET_JOIN_TOKEN"]


def test_an_unknown_variable_is_not_a_flag() -> None:
    """The flag lookup above does not accept just any FEDNET_ name."""
    names = _env_names("client")

    assert "FEDNET_SERVER" in names and "FEDNET_PARTITION" in names
    assert "FEDNET_CLIENT_PARTITION" not in names
    assert "FEDNET_ADMIN_TOKEN" not in names
