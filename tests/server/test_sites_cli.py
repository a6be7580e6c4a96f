"""``fednet sites add|list|revoke``, offline on a state dir and through the API."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

import pytest

from fednet.admin.sites import add_command, list_command, revoke_command
from fednet.commands import _site_name
from fednet.server.audit import AuditLog
from fednet.server.keys import SITES
from fednet.server.sites import SiteBook
from fednet.server.store import Store
from tests.server.conftest import AppFactory


def _args(action: str, state_dir: Path, name: str | None = None, **flags: Any) -> Any:
    options = {"server": None, "admin_token": None, "ca_file": None, **flags}
    return argparse.Namespace(action=action, state_dir=state_dir, name=name, **options)


def _state(state_dir: Path) -> tuple[list[Any], list[Any]]:
    """Return the state dir's sites and audit entries (oldest first)."""
    store = Store(state_dir)
    try:
        audit = list(reversed(AuditLog(store).entries()))
        return SiteBook(store).list(), audit
    finally:
        store.close()


def test_offline_add_list_revoke_on_the_state_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """add prints the credential alone on stdout; list and revoke; audited as cli."""
    state = tmp_path / "state"
    assert add_command(_args("add", state, "hospital-a")) == 0
    out, err = capsys.readouterr()
    credential = out.strip()
    assert credential.startswith("hospital-a:") and "\n" not in credential
    assert "shown only this once" in err and f"FEDNET_SITE_TOKEN='{credential}'" in err
    store = Store(state)
    assert SiteBook(store).verify(credential) == "hospital-a"
    store.close()
    assert list_command(_args("list", state)) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[:2] == ["NAME", "STATUS"]
    assert row.split()[:2] == ["hospital-a", "active"]
    assert revoke_command(_args("revoke", state, "hospital-a")) == 0
    assert "revoked" in capsys.readouterr().out
    sites, audit = _state(state)
    assert [(s.name, s.revoked) for s in sites] == [("hospital-a", True)]
    assert [(e.actor, e.action, e.target) for e in audit] == [
        ("cli", "site.add", "hospital-a"),
        ("cli", "site.revoke", "hospital-a"),
    ]


@pytest.mark.parametrize(
    "command, name, message",
    [
        (add_command, "bad name", "invalid site name"),
        (add_command, "taken", "exists"),
        (revoke_command, "nobody", "no site 'nobody'"),
    ],
)
def test_offline_errors_exit_2_with_the_reason(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: Any,
    name: str,
    message: str,
) -> None:
    """A bad name, a taken one, an unknown one: exit 2, one line, nothing audited."""
    state = tmp_path / "state"
    assert add_command(_args("add", state, "taken")) == 0
    capsys.readouterr()
    action = "add" if command is add_command else "revoke"
    assert command(_args(action, state, name)) == 2
    out, err = capsys.readouterr()
    assert out == "" and message in err and err.startswith(f"fednet sites {action}:")
    assert len(_state(state)[1]) == 1


def test_list_without_a_state_dir_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """list and revoke do not create a state dir where there is none."""
    missing = tmp_path / "nowhere"
    assert list_command(_args("list", missing)) == 2
    assert "no coordinator state" in capsys.readouterr().err
    assert not missing.exists()


async def test_online_commands_go_through_the_api(
    make_client: AppFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --server: add, list and revoke as the admin; a wrong token exits 2."""
    client = await make_client(admin_token="adm")
    server = str(client.make_url("/"))
    online = {"server": server, "admin_token": "adm"}
    state = tmp_path / "unused"

    async def run(command: Any, action: str, name: str | None, **flags: Any) -> int:
        args = _args(action, state, name, **{**online, **flags})
        code: int = await asyncio.to_thread(command, args)
        return code

    assert await run(add_command, "add", "site-a") == 0
    credential = capsys.readouterr().out.strip()
    assert client.app[SITES].verify(credential) == "site-a"
    assert await run(list_command, "list", None) == 0
    assert "site-a" in capsys.readouterr().out
    assert await run(revoke_command, "revoke", "site-a") == 0
    assert client.app[SITES].verify(credential) is None
    assert await run(revoke_command, "revoke", "site-a") == 2
    assert "revoked already" in capsys.readouterr().err
    assert await run(add_command, "add", "site-b", admin_token="wrong") == 2
    assert "admin token" in capsys.readouterr().err
    assert not state.exists()


def test_a_site_credential_names_the_client() -> None:
    """`fednet client --site-token NAME:SECRET` defaults --name to NAME."""
    assert _site_name("hospital-a:s3cret:x") == "hospital-a"
    assert _site_name(None) is None
    assert _site_name("no-colon") is None
    assert _site_name(":secret") is None
