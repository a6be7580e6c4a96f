"""User-data scripts: bash syntax, shellcheck, secrets, signals, state snapshots."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

STACKS = ("simple", "complex")
SIGNALLED = {
    "simple": {"ServerInstance": "ServerInstance", "ClientInstance": "ClientInstance"},
    "complex": {
        "ServerLaunchTemplate": "ServerGroup",
        "ClientLaunchTemplate": "ClientGroup",
    },
}


def _scripts(templates: dict[str, dict[str, Any]], cfn: Any) -> dict[str, str]:
    """Return every rendered script: user data and the files it installs."""
    found = {}
    for stack in STACKS:
        for name, body in cfn.user_data_bodies(templates[stack]).items():
            script = cfn.render_sub(body)
            found[f"{stack}/{name}"] = script
            for path, inner in cfn.embedded_scripts(script).items():
                found[f"{stack}/{name}{path}"] = inner
    return found


def test_each_stack_has_a_server_and_a_client_script(
    templates: dict[str, dict[str, Any]], cfn: Any
) -> None:
    """Four user-data scripts plus the state-save script of the complex stack."""
    names = sorted(_scripts(templates, cfn))

    assert names == [
        "complex/ClientLaunchTemplate",
        "complex/ServerLaunchTemplate",
        "complex/ServerLaunchTemplate/usr/local/bin/fednet-state-save",
        "simple/ClientInstance",
        "simple/ServerInstance",
    ]


def test_scripts_parse_with_bash_n(
    templates: dict[str, dict[str, Any]], cfn: Any, tmp_path: Path
) -> None:
    """bash -n accepts every script."""
    for name, script in _scripts(templates, cfn).items():
        path = tmp_path / (name.replace("/", "_") + ".sh")
        path.write_text(script, encoding="utf-8")
        result = subprocess.run(
            ["bash", "-n", str(path)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, (name, result.stderr)


def test_scripts_pass_shellcheck(
    templates: dict[str, dict[str, Any]], cfn: Any, tmp_path: Path
) -> None:
    """shellcheck (Debian's package) finds nothing in any script."""
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "install shellcheck (make system-deps)"
    paths = []
    for name, script in _scripts(templates, cfn).items():
        path = tmp_path / (name.replace("/", "_") + ".sh")
        path.write_text(script, encoding="utf-8")
        paths.append(str(path))

    result = subprocess.run(
        [shellcheck, "--shell=bash", "--severity=style", *paths],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout


def test_shellcheck_flags_a_bad_script(tmp_path: Path) -> None:
    """The shellcheck call really fails on an unquoted expansion."""
    shellcheck = shutil.which("shellcheck")
    assert shellcheck
    path = tmp_path / "bad.sh"
    path.write_text("#!/bin/bash\nrm -rf $1/*\n", encoding="utf-8")

    result = subprocess.run([shellcheck, str(path)], capture_output=True, check=False)

    assert result.returncode != 0


@pytest.mark.parametrize("stack", STACKS)
def test_tokens_come_from_the_store_into_a_private_env_file(
    templates: dict[str, dict[str, Any]], cfn: Any, stack: str
) -> None:
    """Tokens are read at boot by name and written only to a 0600 env file."""
    for name, body in cfn.user_data_bodies(templates[stack]).items():
        for line in body.splitlines():
            if "TOKEN=" in line:
                assert re.fullmatch(
                    r"FEDNET_(JOIN|ADMIN)_TOKEN=\$\w+_token", line
                ), line
        assert "join_token=$(read_secret '${JoinTokenName}')" in body, name
        assert "aws secretsmanager get-secret-value" in body, name
        assert "aws ssm get-parameter" in body and "--with-decryption" in body, name
        env_write = body.index("cat >/etc/fednet/")
        assert body.rfind("umask 077", 0, env_write) > body.rfind(
            "umask 022", 0, env_write
        )
        assert " -e FEDNET_" not in body, "tokens must not reach docker argv"
        assert "--env-file /etc/fednet/" in body, name


def test_only_the_coordinator_reads_the_admin_token(
    templates: dict[str, dict[str, Any]], cfn: Any
) -> None:
    """Clients never fetch the admin token."""
    for stack in STACKS:
        for name, body in cfn.user_data_bodies(templates[stack]).items():
            reads_admin = "${AdminTokenName}" in body
            assert reads_admin == name.startswith("Server"), (stack, name)


@pytest.mark.parametrize("stack", STACKS)
def test_signals_target_the_resource_that_waits_for_them(
    templates: dict[str, dict[str, Any]], cfn: Any, stack: str
) -> None:
    """cfn-signal names the instance or group whose CreationPolicy waits."""
    resources = templates[stack]["Resources"]
    for name, body in cfn.user_data_bodies(templates[stack]).items():
        target = SIGNALLED[stack][name]

        assert f"--resource {target} " in body, name
        assert body.count("signal 0 ") == 1, name
        assert "ResourceSignal" in resources[target]["CreationPolicy"], name


def _state_save_script(templates: dict[str, dict[str, Any]], cfn: Any) -> str:
    body = cfn.user_data_bodies(templates["complex"])["ServerLaunchTemplate"]
    return str(cfn.embedded_scripts(body)["/usr/local/bin/fednet-state-save"])


def test_state_save_uploads_a_consistent_snapshot(
    templates: dict[str, dict[str, Any]], cfn: Any, tmp_path: Path
) -> None:
    """The save script snapshots SQLite (WAL included) and models, then mirrors."""
    state, snap, bucket, bin_dir = (
        tmp_path / d for d in ("state", "snap", "s3", "bin")
    )
    for d in (state, bucket, bin_dir):
        d.mkdir()
    db = sqlite3.connect(state / "fednet.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE rounds (server_round INTEGER)")
    db.executemany("INSERT INTO rounds VALUES (?)", [(1,), (2,), (3,)])
    db.commit()  # kept open: the rows live in fednet.db-wal only
    (state / "run-1.npz").write_bytes(b"model bytes")
    (bucket / "run-0.npz").write_bytes(b"a checkpoint the coordinator pruned")
    # A stand-in `aws` that performs `aws s3 sync SRC s3://... [--delete]` as a
    # copy that, with --delete, first drops what SRC no longer has.
    (bin_dir / "aws").write_text(
        '#!/bin/bash\n[ "$1 $2" = "s3 sync" ] || exit 9\n'
        f'if [[ " $* " == *" --delete "* ]]; then rm -rf "{bucket}"/*; fi\n'
        f'cp -r "$3". "{bucket}/"\n',
        encoding="utf-8",
    )
    (bin_dir / "aws").chmod(0o755)
    script = (
        _state_save_script(templates, cfn)
        .replace("/var/lib/fednet-snapshot", str(snap))
        .replace("/var/lib/fednet", str(state))
        .replace("/run/fednet-state-save.lock", str(tmp_path / "lock"))
    )
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}

    result = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, check=False
    )
    db.close()

    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in bucket.iterdir()) == ["fednet.db", "run-1.npz"]
    copy = sqlite3.connect(bucket / "fednet.db")
    rows = copy.execute("SELECT server_round FROM rounds ORDER BY 1").fetchall()
    copy.close()
    assert rows == [(1,), (2,), (3,)]
    assert (bucket / "run-1.npz").read_bytes() == b"model bytes"


def test_state_save_skips_an_empty_state_directory(
    templates: dict[str, dict[str, Any]], cfn: Any, tmp_path: Path
) -> None:
    """Nothing is uploaded (nor overwritten) before the coordinator wrote state."""
    (tmp_path / "state").mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text("#!/bin/bash\nexit 7\n", encoding="utf-8")
    (bin_dir / "aws").chmod(0o755)
    script = (
        _state_save_script(templates, cfn)
        .replace("/var/lib/fednet-snapshot", str(tmp_path / "snap"))
        .replace("/var/lib/fednet", str(tmp_path / "state"))
        .replace("/run/fednet-state-save.lock", str(tmp_path / "lock"))
    )
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}

    result = subprocess.run(["bash", "-c", script], env=env, check=False)

    assert result.returncode == 0
