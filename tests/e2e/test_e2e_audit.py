"""A federation set up the secure way, end to end, and its audit log.

A private CA from ``fednet ca``, sites added through the API with ``fednet
sites add``, clients with their credentials over wss, a run followed by
``fednet run``, a viewer downloading the model, a failed login, a
revocation: ``fednet audit`` then lists every one with its actor.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from fednet.tlsctx import client_ssl_context
from tests.e2e.e2eutil import Api, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

ADMIN, VIEWER = "admin-" + "a" * 26, "viewer-" + "v" * 25


def _fednet(*args: str, cwd: Path, code: int = 0) -> str:
    """Run ``python -m fednet ARGS`` to the end; return its stdout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDNET_")}
    done = subprocess.run(
        [sys.executable, "-m", "fednet", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=cwd,
    )
    assert done.returncode == code, f"fednet {args}:\n{done.stdout}{done.stderr}"
    return done.stdout


def _failed_login(base: str, ca: Path) -> int:
    """Post a wrong token through the real login form (with its CSRF field)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(jar),
        urllib.request.HTTPSHandler(context=client_ssl_context(ca)),
    )
    form = opener.open(f"{base}/login", timeout=10).read().decode()
    match = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert match, form[:2000]
    body = urllib.parse.urlencode({"csrf_token": match[1], "token": "guess"})
    try:
        opener.open(f"{base}/login", data=body.encode(), timeout=10)
    except urllib.error.HTTPError as e:
        return e.code
    return 200


def test_every_action_of_a_secure_federation_is_audited_with_its_actor(
    cluster: Any, tmp_path: Path
) -> None:
    """Sites, a run, a download, a failed login and a revocation, each audited."""
    pki = tmp_path / "pki"
    _fednet("ca", "init", str(pki), cwd=tmp_path)
    _fednet("ca", "issue", str(pki), "localhost", "--san", "127.0.0.1", cwd=tmp_path)
    ca = pki / "ca.crt"
    server = cluster.server(
        "--tls-cert", str(pki / "localhost.crt"),
        "--tls-key", str(pki / "localhost.key"),
        "--admin-token", ADMIN, "--viewer-token", VIEWER,
        token=ADMIN, ssl_context=client_ssl_context(ca),
    )  # fmt: skip
    admin = ("--server", server.http_url, "--ca-file", str(ca), "--admin-token", ADMIN)
    credentials = {
        site: _fednet("sites", "add", site, *admin, cwd=tmp_path).strip()
        for site in ("site-1", "site-2")
    }
    clients = {
        site: cluster.client(
            server, site, "--dataset", "digits", "--partition", f"{i}/2",
            "--seed", "0", "--ca-file", str(ca), "--site-token", credentials[site],
        )  # fmt: skip
        for i, site in enumerate(credentials, start=1)
    }
    server.wait_for_clients(2, list(clients.values()))

    _fednet(
        "run", *admin, "--task", "digits", "--rounds", "2", "--min-clients", "2",
        cwd=tmp_path,
    )  # fmt: skip
    viewer = Api(server.http_url, VIEWER, client_ssl_context(ca))
    assert len(viewer.model(1)) == 2
    assert _failed_login(server.http_url, ca) == 401
    _fednet("sites", "revoke", "site-2", *admin, cwd=tmp_path)

    def refused_again() -> bool:
        log = _fednet("audit", *admin, cwd=tmp_path)
        return "invalid or revoked credential" in log

    wait_until(refused_again, "site-2's reconnect to be refused", [server.process])
    lines = _fednet("audit", *admin, "--limit", "1000", cwd=tmp_path).splitlines()

    def actors(action: str) -> list[str]:
        return [line.split()[1] for line in lines if line.split()[2] == action]

    assert actors("site.add") == ["admin", "admin"]
    assert actors("run.launch") == ["admin"]
    assert actors("model.download") == ["viewer"]
    assert actors("login.failed") == ["anonymous"]
    assert actors("site.revoke") == ["admin"]
    refused = [line.split() for line in lines if " client.refused " in line]
    assert refused, lines
    for fields in refused:  # when, actor, action, target, outcome, from, detail
        assert fields[1] == "anonymous" and fields[4:6] == ["refused", "127.0.0.1"]
    offline = _fednet("audit", "--state-dir", str(server.state_dir), cwd=tmp_path)
    assert offline.splitlines()[:5] == lines[:5]
