"""Static checks of compose/: hadolint, compose v1/v2 config, shellcheck."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
COMPOSE_DIR = REPO / "compose"
DOCKERFILES = sorted(COMPOSE_DIR.glob("Dockerfile*"))
COMPOSE_FILES = [
    COMPOSE_DIR / "docker-compose.yml",
    COMPOSE_DIR / "docker-compose.own-data.yml",
]


def _tool(name: str) -> str:
    """Find a tool beside this interpreter or on PATH, else skip (fail under CI)."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(
        name
    )
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{name} is required under CI", pytrace=False)
        pytest.skip(f"{name} not installed")
    assert found is not None
    return found


def _compose_commands() -> list[list[str]]:
    commands = []
    if shutil.which("docker-compose"):
        commands.append(["docker-compose"])
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run(
            [docker, "compose", "version"], capture_output=True, timeout=30
        ).returncode
        == 0
    ):
        commands.append([docker, "compose"])
    return commands


def test_hadolint_reports_nothing_on_the_dockerfiles() -> None:
    """hadolint finds no rule violations (of any severity) in compose/Dockerfile*."""
    assert DOCKERFILES, "no Dockerfile in compose/"
    result = subprocess.run(
        [_tool("hadolint"), "--no-color", *map(str, DOCKERFILES)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


@pytest.mark.parametrize("command", _compose_commands(), ids=" ".join)
def test_compose_files_are_valid_for_each_installed_compose(command: list[str]) -> None:
    """Every installed compose (v1 and/or v2) accepts the compose files as they are."""
    env = {**os.environ, "FEDNET_OWN_CSV": "/dev/null"}
    files = [arg for f in COMPOSE_FILES for arg in ("-f", str(f))]
    result = subprocess.run(
        [*command, *files, "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=COMPOSE_DIR,
    )
    assert result.returncode == 0, result.stderr


def test_own_data_override_refuses_to_start_without_a_csv_path() -> None:
    """The own-data override names a missing FEDNET_OWN_CSV instead of mounting ""."""
    commands = _compose_commands()
    if not commands:
        pytest.skip("no compose installed")
    env = {k: v for k, v in os.environ.items() if k != "FEDNET_OWN_CSV"}
    files = [arg for f in COMPOSE_FILES for arg in ("-f", str(f))]
    result = subprocess.run(
        [*commands[0], *files, "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=COMPOSE_DIR,
    )
    assert result.returncode != 0
    assert "FEDNET_OWN_CSV" in result.stderr


def test_shellcheck_passes_on_build_base_image_script() -> None:
    """shellcheck finds nothing in compose/build-base-image.sh."""
    script = COMPOSE_DIR / "build-base-image.sh"
    result = subprocess.run(
        [_tool("shellcheck"), str(script)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout
