"""Network faults between namespaces: delay and loss, a client cut, the coordinator cut.

The coordinator and three clients each run in a network namespace of their
own, joined to a router namespace by veth pairs addressed from 198.18.0.0/15
(see ``lab.py``). The faults are real on the wire path between namespaces;
fednet is not modified or mocked:

- **Delay and loss.** With ``sch_netem`` in the kernel, each client link gets
  ``tc qdisc ... netem delay 200ms loss 5%`` on both of its ends. Kernels built
  without netem (as on our CI machines, where modules cannot be loaded either)
  get the same behaviour from two other real mechanisms: iptables
  ``-m statistic --mode random --probability 0.05 -j DROP`` rules on the
  client's ``eth0`` (in and out: TCP sees real losses and retransmits), and an
  ``NFQUEUE`` rule in the router that hands every packet to or from a client
  link to ``nfqdelay.py``, which holds it 200 ms in the kernel before its
  verdict. Either way each direction is delayed 200 ms (a 400 ms round trip,
  which the test checks with a TCP connect) and loses 5 %.
- **Cuts.** The router's end of a link is taken down (``ip link set down``), as
  if its cable were pulled, then brought back up.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.e2eutil import wait_until
from tests.netns.conftest import PORT, SITES, NetCluster

pytestmark = [pytest.mark.e2e]

DELAY_MS = 200
LOSS = 0.05
HEARTBEAT_S = 2.0
FAST_RUN = {
    "task": "digits",
    "model": "logreg",
    "local_epochs": 1,
    "batch_size": 32,
    "learning_rate": 0.1,
    "seed": 0,
    "round_timeout_s": 30.0,
}
# Minibatches of one make each fit last long enough to cut a link during it.
SLOW_RUN = {**FAST_RUN, "local_epochs": 15, "batch_size": 1, "learning_rate": 0.01}


def degrade_client_links(net: NetCluster) -> str:
    """Give every client link 200 ms of delay and 5 % loss; name the mechanism."""
    lab = net.lab
    if lab.has_netem():
        for site in SITES:
            lab.netem(site, DELAY_MS, LOSS)
        return "tc netem"
    for site in SITES:
        lab.drop_randomly(site, LOSS)
        lab.queue_forwarded(site, queue=0)
    net.delayer(queue=0, delay_ms=DELAY_MS)
    return "iptables statistic DROP + NFQUEUE delayer (no sch_netem)"


def joins(proc: Any) -> int:
    """Return how many times a client process joined the coordinator."""
    return int(proc.output().count(" joined ws://"))


def status_of(server: Any, name: str) -> str:
    """Return a client's status in ``GET /api/clients`` (or "unknown")."""
    for client in server.api.get("/api/clients"):
        if client["name"] == name:
            return str(client["status"])
    return "unknown"


def check_history(run: dict[str, Any], rounds: int) -> list[dict[str, Any]]:
    """Assert the run finished with every round recorded; return the rounds."""
    assert run["status"] == "finished", run["error"]
    history: list[dict[str, Any]] = run["rounds"]
    assert [r["server_round"] for r in history] == list(range(1, rounds + 1))
    return history


def summary(history: list[dict[str, Any]]) -> str:
    """Return the clients and dropped counts per round, compactly."""
    return " ".join(
        f"r{r['server_round']}:{r['num_clients']}c/{len(r['dropped'])}d"
        f"/{r['duration_s']:.1f}s"
        for r in history
    )


@pytest.mark.timeout(120)
def test_run_finishes_with_delay_and_loss_on_every_client_link(
    net: NetCluster, figures: list[str]
) -> None:
    """200 ms each way and 5 % loss on each client link: every round is recorded."""
    rounds = 5
    mechanism = degrade_client_links(net)
    server = net.coordinator(heartbeat_s=10)
    coordinator = net.lab.nodes["coordinator"].address
    connect_s = net.lab.connect_time("site-1", coordinator, PORT)
    assert connect_s >= 2 * DELAY_MS / 1000 - 0.01, "the links are not delayed"
    clients = net.sites(server, heartbeat_s=10)

    started = time.monotonic()
    run_id = server.api.launch(**FAST_RUN, rounds=rounds, min_clients=2)
    run = server.wait_for_run(run_id, timeout_s=90)
    took = time.monotonic() - started

    history = run["rounds"]
    figures.append(f"mechanism: {mechanism}; TCP connect {connect_s * 1000:.0f} ms")
    figures.append(f"{len(history)} rounds in {took:.1f} s: {summary(history)}")
    figures.append(f"reconnects: {[joins(c) - 1 for c in clients]}")
    if "NFQUEUE" in mechanism:
        counts = [net.lab.loss_counts(site) for site in SITES]
        figures.append(
            "packets dropped/offered: "
            + ", ".join(f"{s} {d}/{o}" for s, (d, o) in zip(SITES, counts))
        )
        assert sum(d for d, _ in counts) > 0, "no packet was dropped"

    check_history(run, rounds)
    for entry in history:
        assert entry["num_clients"] >= 2
    assert all(c.alive for c in clients)


@pytest.mark.timeout(120)
def test_client_cut_mid_round_rejoins_by_itself(
    net: NetCluster, figures: list[str]
) -> None:
    """site-3's cable pulled during its fit for 5 s: dropped, then back by itself.

    Each fit takes at least 0.4 s (``--fit-delay-s``), so the 20 rounds last
    well past the cut and the rejoin however fast local training is.
    """
    rounds, cut_s = 20, 5.0
    server = net.coordinator(heartbeat_s=HEARTBEAT_S)
    clients = net.sites(server, HEARTBEAT_S, "--fit-delay-s", "0.4")
    run_id = server.api.launch(**SLOW_RUN, rounds=rounds, min_clients=2)
    server.wait_for(
        lambda: len(server.api.run(run_id)["rounds"]) >= 1
        and status_of(server, "site-3") == "training",
        "site-3 to train in round 2 or later",
    )
    cut_round = len(server.api.run(run_id)["rounds"]) + 1
    net.lab.cut("site-3")
    cut_at = time.monotonic()
    server.wait_for(
        lambda: status_of(server, "site-3") == "disconnected",
        "the coordinator to notice the cut",
        timeout_s=30,
    )
    noticed_s = time.monotonic() - cut_at
    time.sleep(max(0.0, cut_at + cut_s - time.monotonic()))
    net.lab.restore("site-3")
    restored_at = time.monotonic()
    wait_until(
        lambda: status_of(server, "site-3") != "disconnected",
        "site-3 to rejoin",
        [server.process, *clients],
        timeout_s=60,
    )
    rejoin_s = time.monotonic() - restored_at
    back = {c["name"]: c for c in server.api.get("/api/clients")}["site-3"]
    run = server.wait_for_run(run_id, timeout_s=90)

    history = run["rounds"]
    missing = [r for r in history if "site-3" not in r["clients"]]
    figures.append(
        f"cut in round {cut_round} for {cut_s:.0f} s; coordinator noticed after"
        f" {noticed_s:.1f} s; site-3 back {rejoin_s:.1f} s after the restore"
    )
    figures.append(f"{len(history)} rounds: {summary(history)}")
    figures.append(
        f"rounds without site-3: {len(missing)};"
        f" reconnects: {[joins(c) - 1 for c in clients]}"
    )

    check_history(run, rounds)
    # The cut round lacks site-3, unless its update had just gone: then the next.
    assert missing and missing[0]["server_round"] in (cut_round, cut_round + 1)
    assert "site-3" in missing[0]["dropped"], missing[0]
    since = back["connected_since"]
    for entry in missing:
        assert entry["finished_at"] - entry["duration_s"] < since, entry
    later = [r for r in history if r["finished_at"] - r["duration_s"] > since]
    assert later, "the run ended before site-3 was back: make it longer"
    assert all(c.alive for c in clients), "a client process exited"
    assert joins(clients[2]) >= 2, "site-3 did not join again"
