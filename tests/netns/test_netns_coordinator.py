"""The coordinator's link cut for three heartbeats, in its own namespace.

Same lab as ``test_netns_faults.py``: the coordinator and three clients in
namespaces of their own behind a router namespace. The router's end of the
coordinator's link is taken down (``ip link set down``) for 6 s with a 2 s
heartbeat on both sides: nothing passes, so each side notices by its own
unanswered pings and closes its sockets; the clients redial with backoff until
the link is back, and join again by themselves.
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import Process, Server
from tests.e2e.e2eutil import wait_until
from tests.netns.conftest import SITES, NetCluster
from tests.netns.test_netns_faults import (
    FAST_RUN,
    HEARTBEAT_S,
    SLOW_RUN,
    check_history,
    joins,
    status_of,
    summary,
)

pytestmark = [pytest.mark.e2e]

CUT_S = 3 * HEARTBEAT_S
LOST = "server closed the connection"


def cut_coordinator(
    net: NetCluster, server: Server, clients: list[Process]
) -> tuple[float, float]:
    """Cut the coordinator's link for ``CUT_S``; return (noticed_s, rejoin_s).

    Asserts that every client noticed the cut by itself, before the restore
    (no close frame can reach it while the link is down).
    """
    net.lab.cut("coordinator")
    cut_at = time.monotonic()
    wait_until(
        lambda: all(status_of(server, s) == "disconnected" for s in SITES),
        "the coordinator to notice the cut",
        [server.process, *clients],
        timeout_s=30,
    )
    noticed_s = time.monotonic() - cut_at
    wait_until(
        lambda: all(LOST in c.output() for c in clients),
        "every client to notice the cut",
        clients,
        timeout_s=max(1.0, cut_at + CUT_S - time.monotonic()),
    )
    time.sleep(max(0.0, cut_at + CUT_S - time.monotonic()))
    net.lab.restore("coordinator")
    restored_at = time.monotonic()
    server.wait_for_clients(len(SITES), clients)
    return noticed_s, time.monotonic() - restored_at


@pytest.mark.timeout(90)
def test_clients_rejoin_after_the_coordinator_cut_between_runs(
    net: NetCluster, figures: list[str]
) -> None:
    """Cut while no run is active: clients come back and the next run completes."""
    rounds = 3
    server = net.coordinator(heartbeat_s=HEARTBEAT_S)
    clients = net.sites(server, heartbeat_s=HEARTBEAT_S)
    noticed_s, rejoin_s = cut_coordinator(net, server, clients)

    run_id = server.api.launch(**FAST_RUN, rounds=rounds, min_clients=3)
    history = check_history(server.wait_for_run(run_id, timeout_s=60), rounds)
    for entry in history:
        assert sorted(entry["clients"]) == list(SITES), entry
    assert all(c.alive for c in clients), "a client process exited"
    assert [joins(c) for c in clients] == [2, 2, 2]
    figures.append(
        f"cut {CUT_S:.0f} s (heartbeat {HEARTBEAT_S:.0f} s): coordinator noticed"
        f" after {noticed_s:.1f} s; all 3 back {rejoin_s:.1f} s after the restore"
    )
    figures.append(f"{rounds} rounds after: {summary(history)}")


@pytest.mark.timeout(90)
def test_run_survives_the_coordinator_cut_mid_round(
    net: NetCluster, figures: list[str]
) -> None:
    """Cut while every client trains: the run should go on once they are back."""
    rounds = 4
    server = net.coordinator(heartbeat_s=HEARTBEAT_S)
    clients = net.sites(server, heartbeat_s=HEARTBEAT_S)
    run_id = server.api.launch(**SLOW_RUN, rounds=rounds, min_clients=2)
    server.wait_for(
        lambda: len(server.api.run(run_id)["rounds"]) >= 1
        and all(status_of(server, s) == "training" for s in SITES),
        "every client to train in round 2 or later",
    )
    cut_round = len(server.api.run(run_id)["rounds"]) + 1
    noticed_s, rejoin_s = cut_coordinator(net, server, clients)
    figures.append(
        f"cut in round {cut_round} for {CUT_S:.0f} s: coordinator noticed after"
        f" {noticed_s:.1f} s; all 3 back {rejoin_s:.1f} s after the restore"
    )
    run = server.wait_for_run(run_id, timeout_s=60)
    figures.append(f"run {run['status']} ({run['error']}): {summary(run['rounds'])}")

    check_history(run, rounds)
    assert all(c.alive for c in clients), "a client process exited"
