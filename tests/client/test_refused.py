"""A client refused at the upgrade (401) says why, from the coordinator's answer."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from fednet.server.app import create_app
from fednet.settings import ServerSettings
from tests.client.conftest import TIMEOUT, make_runner


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (None, "a site credential is required (--site-token)"),
        ("site-3:not-the-secret", "invalid or revoked credential"),
    ],
)
async def test_a_refused_upgrade_names_the_servers_reason(
    aiohttp_server: Any, tmp_path: Path, token: str | None, reason: str
) -> None:
    """State "refused" and the reason, not "401, message='Invalid response status'"."""
    settings = ServerSettings(state_dir=tmp_path, admin_token="admin-s3cret")
    server = await aiohttp_server(create_app(settings))
    runner = make_runner(f"ws://127.0.0.1:{server.port}/ws", max_retries=0)
    if token is not None:
        runner = make_runner(runner.settings.server, max_retries=0, site_token=token)
    with pytest.raises(ConnectionError, match="gave up after 0 retries"):
        await asyncio.wait_for(runner.run(), TIMEOUT)
    assert runner.state.state == "refused"
    assert runner.state.last_error == f"refused by the server (HTTP 401): {reason}"
