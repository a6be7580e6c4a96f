"""Fixtures that run the coordinator and three clients in separate namespaces.

The tests need root and ``ip netns add``: without them they skip, except under
CI (``CI=true``), where they fail instead, since CI machines can create
namespaces. Processes are ``python -m fednet`` children started with
``ip netns exec``, tracked like the end-to-end tests' (logs printed when a
test fails); the namespaces, and the links in them, are deleted after each
test whatever its outcome.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from tests.e2e.conftest import Cluster, Process, Server
from tests.e2e.e2eutil import wait_until
from tests.netns.lab import Lab, NetnsApi, Node, checked, sh, tool

IN_CI = os.environ.get("CI", "").lower() == "true"
PORT = 8080  # the coordinator's namespace is its own: any port is free
SITES = ("site-1", "site-2", "site-3")
DELAYER = Path(__file__).with_name("nfqdelay.py")
_COUNTER = itertools.count(1)
_FIGURES = pytest.StashKey[list[str]]()


def unavailable(reason: str) -> NoReturn:
    """Skip with the reason, or fail under CI where namespaces must work."""
    print(f"netns tests: {reason}")
    if IN_CI:
        pytest.fail(f"network namespaces are required under CI: {reason}", False)
    pytest.skip(reason)
    raise AssertionError("unreachable")  # for type checkers: skip() raises


def remove_stale_namespaces() -> None:
    """Delete lab namespaces whose test process died without cleaning up."""
    for line in sh("ip", "netns", "list").splitlines():
        match = re.match(r"fnt(\d+)-\S+", line)
        if match and not os.path.exists(f"/proc/{match[1]}"):
            print(f"netns tests: deleting {match[0]}, left by a dead process")
            sh("ip", "netns", "del", match[0], check=False)


@pytest.fixture(scope="session")
def netns_ready() -> None:
    """Check once that this process may create namespaces; skip (or fail) if not."""
    if os.geteuid() != 0:
        unavailable("network namespaces need root")
    for name in ("ip", "iptables"):
        if tool(name) == name:
            unavailable(f"{name} is not installed (.ci/system-deps installs it)")
    probe = f"fnt{os.getpid()}-probe"
    try:
        sh("ip", "netns", "add", probe)
    except RuntimeError as e:
        unavailable(f"cannot create a network namespace: {e}")
    sh("ip", "netns", "del", probe)
    remove_stale_namespaces()


class NetCluster(Cluster):
    """A :class:`Cluster` whose processes each run inside a lab namespace."""

    def __init__(self, tmp_path: Path, lab: Lab) -> None:
        super().__init__(tmp_path)
        self.lab = lab
        self.apis: list[NetnsApi] = []

    def spawn_in(self, netns: str, name: str, *argv: str) -> Process:
        """Start ``argv`` inside ``netns`` with its output in ``<name>-N.log``."""
        log_path = self.tmp_path / "logs" / f"{name}-{len(self.processes)}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("FEDNET_")}
        popen = subprocess.Popen(
            [tool("ip"), "netns", "exec", netns, *argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.tmp_path,
            env={**env, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
        proc = Process(name, tuple(argv), popen, log_path, log)
        self.processes.append(proc)
        return proc

    def fednet(self, node: Node, name: str, *args: str) -> Process:
        """Start ``python -m fednet ARGS`` inside a node's namespace."""
        return self.spawn_in(node.netns, name, sys.executable, "-m", "fednet", *args)

    def coordinator(self, heartbeat_s: float) -> Server:
        """Start the coordinator in the ``coordinator`` node; wait for ``/healthz``."""
        node = self.lab.nodes["coordinator"]
        state_dir = self.tmp_path / "state"
        proc = self.fednet(
            node, "server", "server", "--host", checked(node.address),
            "--port", str(PORT), "--state-dir", str(state_dir),
            "--heartbeat-s", f"{heartbeat_s:g}",
            # The lab's namespaces reach nothing but each other.
            "--insecure",
        )  # fmt: skip
        api = NetnsApi(f"http://{checked(node.address)}:{PORT}", node.netns)
        self.apis.append(api)
        server = Server(proc, PORT, state_dir, api)
        wait_until(api.reachable, "the server to answer /healthz", [proc])
        return server

    def sites(self, server: Server, heartbeat_s: float, *extra: str) -> list[Process]:
        """Start a client in each site's namespace; wait until all three joined.

        ``extra`` are more ``fednet client`` flags (e.g. ``--fit-delay-s``).
        """
        url = f"ws://{checked(self.lab.nodes['coordinator'].address)}:{PORT}/ws"
        procs = [
            self.fednet(
                self.lab.nodes[site], site, "client", "--server", url,
                "--name", site, "--client-host", checked(self.lab.nodes[site].address),
                "--client-port", "0", "--heartbeat-s", f"{heartbeat_s:g}",
                "--backoff-initial-s", "0.2", "--backoff-max-s", "1",
                "--dataset", "digits", "--partition", f"{i}/{len(SITES)}",
                "--alpha", "0.5", "--seed", "0", *extra,
            )  # fmt: skip
            for i, site in enumerate(SITES, 1)
        ]
        server.wait_for_clients(len(SITES), procs)
        return procs

    def delayer(self, queue: int, delay_ms: int) -> Process:
        """Start the NFQUEUE delayer in the router namespace; wait until bound."""
        proc = self.spawn_in(
            self.lab.router, "delayer", sys.executable, str(DELAYER),
            "--queue", str(queue), "--delay-ms", str(delay_ms),
        )  # fmt: skip
        wait_until(lambda: "ready" in proc.output(), "the delayer to bind", [proc])
        return proc

    def stop(self) -> None:
        """Let delayers print their counts (SIGTERM), then kill everything."""
        for proc in self.processes:
            if proc.name == "delayer" and proc.alive:
                proc.popen.send_signal(signal.SIGTERM)
                try:
                    proc.popen.wait(5)
                except subprocess.TimeoutExpired:
                    pass
        super().stop()
        for api in self.apis:
            api.close()


@pytest.fixture
def net(
    request: pytest.FixtureRequest, tmp_path: Path, netns_ready: None
) -> Iterator[NetCluster]:
    """A lab of four namespaces (coordinator, site-1..3) and its processes.

    Everything is removed afterwards, also when the test fails: processes
    first (they hold the namespaces), then the namespaces with their links.
    """
    lab = Lab(f"fnt{os.getpid()}-{next(_COUNTER)}")
    cluster = NetCluster(tmp_path, lab)
    try:
        for name in ("coordinator", *SITES):
            lab.add_node(name)
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            lab.close()
        failed = any(
            getattr(getattr(request.node, f"report_{when}", None), "failed", False)
            for when in ("setup", "call")
        )
        if failed:
            print(f"\n===== process logs of {request.node.name} =====")
            print(cluster.logs())


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """Lines of figures a test reports; printed, and again in the summary."""
    lines: list[str] = []
    yield lines
    print("\n".join(lines))
    request.config.stash.setdefault(_FIGURES, []).extend(
        f"{request.node.name}: {line}" for line in lines
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Show the figures of the network tests (for docs/reliability.md)."""
    lines = terminalreporter.config.stash.get(_FIGURES, [])
    if lines:
        terminalreporter.section("netns figures")
        for line in lines:
            terminalreporter.write_line(line)
