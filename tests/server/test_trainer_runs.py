"""Runs of a site's trainer over real sockets: eligibility, initial model, checks."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import numpy as np

from fednet.client.runner import ClientRunner
from fednet.client.sitetrainers import SiteTrainers, site_context
from fednet.client.trainer import Trainer
from fednet.learning.datasets import load_builtin_partition
from fednet.learning.trainers.architecture import Architecture
from fednet.learning.trainers.registry import site_trainer_names
from fednet.protocol import Fit, InitRequest, InitResult, Trainers, Welcome
from fednet.settings import ClientSettings
from fednet.trainer_messages import TRAINERS_VERSION
from tests.server.conftest import AppFactory, hello, receive, send

PLUGINS = "tests.trainers.plugins"


def _runner(url: str, i: int, trainers: tuple[str, ...]) -> ClientRunner:
    settings = ClientSettings(
        server=url, name=f"site-{i}", dataset="digits", partition=(i, 4), alpha=0.5,
        trainers=trainers,
    )
    data = load_builtin_partition("digits", (i, 4), alpha=0.5, seed=0)
    site = SiteTrainers(site_trainer_names(trainers))
    site.check(site_context(data, i))
    return ClientRunner(settings, Trainer(data, client_number=i, trainers=site),
                        random.Random(i))


async def _follow(client: Any, run_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the run once it ended, and each client's notes seen meanwhile."""
    notes: dict[str, Any] = {}
    for _ in range(600):
        for c in await (await client.get("/api/clients")).json():
            if c["note"]:
                notes[c["name"]] = c["note"]
        run = await (await client.get(f"/api/runs/{run_id}")).json()
        if run["status"] not in ("queued", "running"):
            return run, notes
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} did not end: {run}")


async def _until_announced(client: Any, count: int) -> None:
    """Wait until ``count`` clients are connected and have announced trainers."""
    for _ in range(200):
        clients = await (await client.get("/api/clients")).json()
        if sum(c["trainers"][0]["fingerprint"] is not None for c in clients) == count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not {count} clients with trainers: {clients}")


async def test_a_site_trainer_run_checks_names_and_architectures(
    make_client: AppFactory,
) -> None:
    """Sites' own trainer: one site gives the initial model; a site with another
    hidden size, and one without the trainer, are ineligible with the reason;
    the run finishes with the others."""
    client = await make_client()
    url = str(client.make_url("/ws")).replace("http://", "ws://")
    runners = [
        _runner(url, 1, (f"wide={PLUGINS}:mlp32",)),
        _runner(url, 2, (f"wide={PLUGINS}:mlp32",)),
        _runner(url, 3, (f"wide={PLUGINS}:mlp16",)),
        _runner(url, 4, ()),
    ]
    tasks = [asyncio.create_task(r.run()) for r in runners]
    try:
        await _until_announced(client, 4)
        body = {"model": "wide", "rounds": 3, "local_epochs": 2, "min_clients": 2,
                "round_timeout_s": 20}
        run_id = (await (await client.post("/api/runs", json=body)).json())["id"]
        run, notes = await _follow(client, run_id)
        listed = await (await client.get("/api/clients")).json()
        clients = {c["name"]: c for c in listed}
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert run["status"] == "finished", run
    assert all(set(r["clients"]) == {"site-1", "site-2"} for r in run["rounds"])
    # why each sat out, as the clients list still says once the run ended
    site3, site4 = clients["site-3"]["note"], clients["site-4"]["note"]
    assert site3.startswith(f"run {run_id}: architecture_mismatch")
    assert "W1: expected float32 (64, 16), got float32 (64, 32)" in site3
    assert site4 == f"run {run_id}: the site has no trainer 'wide' (it has logreg, mlp)"
    assert clients["site-4"]["eligible"] and clients["site-1"]["note"] is None
    assert notes.get("site-4", site4).endswith("the site has no trainer 'wide' (it"
                                               " has logreg, mlp)")
    assert clients["site-4"]["status"] != "disconnected"
    assert [t["name"] for t in clients["site-1"]["trainers"]] == [
        "logreg", "mlp", "wide",
    ]
    assert run["rounds"][-1]["federated_accuracy"] > 0.5


async def test_a_client_without_trainers_counts_as_having_the_builtins(
    make_client: AppFactory,
) -> None:
    """A client of the previous release (no trainers message) joins a logreg run."""
    client = await make_client()
    run = await (await client.post("/api/runs", json={"min_clients": 1})).json()
    async with client.ws_connect("/ws") as ws:
        await send(ws, hello())
        welcome = await receive(ws)
        assert isinstance(welcome, Welcome)
        assert welcome.protocol_version == TRAINERS_VERSION
        fit = await receive(ws)
    assert isinstance(fit, Fit) and fit.run_id == run["id"]
    assert fit.config.model == "logreg"


async def test_unusable_initial_parameters_make_the_site_ineligible(
    make_client: AppFactory,
) -> None:
    """Arrays that are not what their architecture says are refused with the reason;
    with no other site the run fails saying why."""
    client = await make_client()
    body = {"model": "custom", "min_clients": 1, "round_timeout_s": 5}
    run_id = (await (await client.post("/api/runs", json=body)).json())["id"]
    async with client.ws_connect("/ws") as ws:
        await send(ws, hello())
        await receive(ws)
        await send(ws, Trainers(({"name": "custom", "fingerprint": ""},)))
        request = await receive(ws)
        assert isinstance(request, InitRequest) and request.run_id == run_id
        assert request.config.model == "custom"
        arch = Architecture.from_arrays("k", ["w"], [np.zeros(3, np.float32)])
        await send(ws, InitResult(run_id, arch.to_dict(), [np.zeros(4, np.float32)]))
        run, _ = await _follow(client, run_id)
    assert run["status"] == "failed"
    assert "no eligible site gave initial parameters of trainer 'custom'" in (
        run["error"]
    )
    assert "w: expected float32 (3,), got float32 (4,)" in run["error"]


async def test_initial_parameters_of_a_site_start_the_run(
    make_client: AppFactory,
) -> None:
    """The coordinator starts a site trainer's run from the arrays a site sent."""
    client = await make_client()
    body = {"model": "custom", "min_clients": 1}
    run_id = (await (await client.post("/api/runs", json=body)).json())["id"]
    start = [np.full((64, 10), 0.5, np.float32), np.ones(10, np.float32)]
    arch = Architecture.from_arrays("mine", ["W", "b"], start)
    async with client.ws_connect("/ws") as ws:
        await send(ws, hello())
        await receive(ws)
        await send(ws, Trainers(({"name": "custom", "fingerprint": ""},)))
        await receive(ws)  # init_request
        await send(ws, InitResult(run_id, arch.to_dict(), start))
        fit = await receive(ws)
    assert isinstance(fit, Fit) and fit.config.model == "custom"
    for got, want in zip(fit.parameters, start, strict=True):
        np.testing.assert_array_equal(got, want)


async def test_initial_parameters_nobody_asked_for_are_ignored(
    make_client: AppFactory,
) -> None:
    """An unsolicited init_result changes nothing; the client stays connected."""
    client = await make_client()
    start = [np.zeros(3, np.float32)]
    arch = Architecture.from_arrays("k", ["w"], start)
    async with client.ws_connect("/ws") as ws:
        await send(ws, hello())
        await receive(ws)
        await send(ws, InitResult(7, arch.to_dict(), start))
        await send(ws, Trainers(({"name": "k", "fingerprint": "ab" * 32},)))
        await _until_announced(client, 1)
        listed = await (await client.get("/api/clients")).json()
    assert listed[0]["trainers"] == [{"name": "k", "fingerprint": "ab" * 32}]
    assert listed[0]["status"] == "idle"
    assert await (await client.get("/api/runs")).json() == []
