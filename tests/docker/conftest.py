"""Fixtures that give the Docker tests a real engine, a base image and common-net."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from tests.docker.dockerutil import REPO, Stack, compose_command, docker, host_port, run
from tests.docker.dockerutil import wait_for

IN_CI = os.environ.get("CI", "").lower() == "true"
OFFICIAL_BASE = "python:3.11-slim"
LOCAL_BASE = "fednet-base:bookworm"
NETWORK = "common-net"
CA_IN_SERVER = "/etc/fednet/coordinator/ca.crt"
SYSTEM_PACKAGES = {"dockerd": "docker.io", "docker-compose": "docker-compose"}


def unavailable(reason: str) -> NoReturn:
    """Skip with the reason, or fail under CI where Docker must work."""
    print(f"docker tests: {reason}")
    if IN_CI:
        pytest.fail(f"Docker is required under CI: {reason}", pytrace=False)
    pytest.skip(reason)
    raise AssertionError("unreachable")  # for type checkers: skip() raises


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def _install_missing_tools() -> None:
    missing = [pkg for cmd, pkg in SYSTEM_PACKAGES.items() if _which(cmd) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        unavailable(f"{' '.join(missing)} missing and not root to apt-get install them")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
    ):
        result = run(cmd, timeout=900, env=env, check=False)
        if result.returncode != 0:
            unavailable(f"{' '.join(cmd)} failed: {result.stderr.strip()[-500:]}")


def _engine_answers() -> bool:
    return run([docker(), "info"], timeout=30, check=False).returncode == 0


def _start_dockerd(log_path: Path) -> subprocess.Popen[bytes]:
    dockerd = _which("dockerd")
    if dockerd is None:
        unavailable("dockerd not found after installing docker.io")
    if os.geteuid() != 0:
        unavailable("no Docker engine runs and starting dockerd needs root")
    with log_path.open("wb") as log:
        proc = subprocess.Popen([dockerd], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-1500:]
            unavailable(f"dockerd exited with {proc.returncode}:\n{tail}")
        if _engine_answers():
            return proc
        time.sleep(1)
    proc.terminate()
    unavailable(f"dockerd did not answer within 60 s; log in {log_path}")


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[None]:
    """Make sure a Docker engine answers; stop it after if this session started it."""
    _install_missing_tools()
    if _engine_answers():
        yield
        return
    log_path = Path(tempfile.gettempdir()) / "fednet-test-dockerd.log"
    print(f"docker tests: no engine answers; starting dockerd (log: {log_path})")
    proc = _start_dockerd(log_path)
    try:
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


@pytest.fixture(scope="session")
def base_image(docker_engine: None) -> str:
    """Return the base image: the official one if it can be had, else a local one.

    FEDNET_TEST_BASE_IMAGE names one explicitly.
    """
    wanted = os.environ.get("FEDNET_TEST_BASE_IMAGE")
    if wanted:
        return wanted
    for image in (OFFICIAL_BASE, LOCAL_BASE):
        if (
            run(
                [docker(), "image", "inspect", image], timeout=30, check=False
            ).returncode
            == 0
        ):
            return image
    pulled = run([docker(), "pull", OFFICIAL_BASE], timeout=300, check=False)
    if pulled.returncode == 0:
        return OFFICIAL_BASE
    print(
        f"docker tests: cannot pull {OFFICIAL_BASE} ({pulled.stderr.strip()[:200]}); "
        f"building {LOCAL_BASE} with debootstrap"
    )
    started = time.monotonic()
    built = run(
        ["bash", str(REPO / "compose" / "build-base-image.sh"), LOCAL_BASE],
        timeout=1200,
        check=False,
    )
    if built.returncode != 0:
        pytest.fail(
            f"build-base-image.sh failed:\n{built.stderr[-3000:]}", pytrace=False
        )
    print(f"docker tests: {LOCAL_BASE} ready in {time.monotonic() - started:.0f} s")
    return LOCAL_BASE


@pytest.fixture(scope="session")
def common_net(docker_engine: None) -> Iterator[str]:
    """Create the external network the compose file joins; remove it if created here."""
    exists = run([docker(), "network", "inspect", NETWORK], timeout=30, check=False)
    if exists.returncode == 0:
        yield NETWORK
        return
    run([docker(), "network", "create", NETWORK], timeout=60)
    try:
        yield NETWORK
    finally:
        run([docker(), "network", "rm", NETWORK], timeout=60, check=False)


@pytest.fixture(scope="session")
def stack(
    base_image: str, common_net: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """Build the images and bring the whole compose project up; `down -v` afterwards.

    The admin token is given, the join token left to the `ca` service to
    generate; the API is https, verified with the compose CA's certificate.
    """
    command = compose_command()
    if command is None:
        unavailable("neither docker-compose nor the docker compose plugin is installed")
    port = host_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FEDNET_")},
        "BASE_IMAGE": base_image,
        "FEDNET_HTTP_PORT": str(port),
        "FEDNET_ADMIN_TOKEN": secrets.token_urlsafe(16),
    }
    stack = Stack(command=command, project="fednettest", env=env, port=port)
    print(
        f"docker tests: {' '.join(stack.command)} up on port {port}, base {base_image}"
    )
    try:
        started = time.monotonic()
        stack.compose("up", "-d", "--build", timeout=1800)
        print(f"docker tests: built and started in {time.monotonic() - started:.0f} s")
        ca_file = tmp_path_factory.mktemp("compose-ca") / "ca.crt"
        ca_file.write_text(stack.read_file("server", CA_IN_SERVER))
        stack = stack.with_ca(ca_file)
        wait_for(
            "the server's /healthz",
            lambda: stack.request("GET", "/healthz") == (200, b"ok\n") or None,
            timeout=120,
        )
        yield stack
    finally:
        logs = stack.compose("logs", "--no-color", "--tail", "60", check=False)
        print(logs.stdout[-20000:])
        print(
            run([docker(), "image", "ls", "fednet/*"], timeout=30, check=False).stdout
        )
        stack.compose("down", "-v", "--remove-orphans", timeout=300, check=False)
