"""Run lifecycle across restarts: what a server does with runs it finds unfinished."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fednet.config import RunConfig
from fednet.protocol import Error, Fit, FitResult, Hello
from fednet.server.store import Store
from tests.server.conftest import AppFactory, receive, send


async def test_unfinished_run_with_an_invalid_config_fails_and_server_serves(
    make_client: AppFactory, tmp_path: Path
) -> None:
    """A stored run whose config no longer validates is failed with the reason."""
    store = Store(tmp_path / "state")
    bad = store.create_run({**RunConfig().to_dict(), "rounds": 0}, 1.0)
    store.close()
    client = await make_client()
    run = await (await client.get(f"/api/runs/{bad}")).json()
    assert run["status"] == "failed"
    assert "cannot resume" in run["error"] and "rounds" in run["error"]
    resp = await client.post("/api/runs", json={"rounds": 1})
    assert resp.status == 201


async def test_newest_unfinished_run_resumes_and_older_ones_fail(
    make_client: AppFactory, tmp_path: Path
) -> None:
    """Only the newest unfinished run is resumed; older ones are superseded."""
    store = Store(tmp_path / "state")
    old = store.create_run(RunConfig(rounds=2).to_dict(), 1.0)
    new = store.create_run(RunConfig(rounds=2).to_dict(), 2.0)
    store.close()
    client = await make_client()
    stale = await (await client.get(f"/api/runs/{old}")).json()
    resumed = await (await client.get(f"/api/runs/{new}")).json()
    assert (stale["status"], stale["error"]) == ("failed", "superseded by a newer run")
    assert resumed["status"] == "queued" and resumed["progress"]["phase"] == "waiting"


async def test_two_launches_at_once_create_one_run(make_client: AppFactory) -> None:
    """Concurrent POST /api/runs: one 201, the other 409; one run stored."""
    client = await make_client()
    body = {"rounds": 1}
    first, second = await asyncio.gather(
        client.post("/api/runs", json=body), client.post("/api/runs", json=body)
    )
    assert sorted([first.status, second.status]) == [201, 409]
    runs = await (await client.get("/api/runs")).json()
    assert len(runs) == 1


async def test_a_client_reporting_an_error_is_dropped_without_the_timeout(
    make_client: AppFactory,
) -> None:
    """A client_error for the round drops that client at once; the round closes."""
    client = await make_client()
    body = {"task": "synthetic", "rounds": 1, "min_clients": 1, "round_timeout_s": 600}
    async with client.ws_connect("/ws") as good, client.ws_connect("/ws") as bad:
        for ws, name in ((good, "good"), (bad, "bad")):
            await send(ws, Hello(name, name, 1, "synthetic"))
            await receive(ws)
        await asyncio.sleep(0.1)  # both registered before the run picks clients
        run_id = (await (await client.post("/api/runs", json=body)).json())["id"]
        fit = await receive(good)
        assert isinstance(fit, Fit) and isinstance(await receive(bad), Fit)
        result = FitResult(run_id, 1, 1, {}, list(fit.parameters))
        await send(good, result)
        await send(bad, Error("client_error", "out of memory", run_id, 1))
        # Well inside the 5 s heartbeat that would drop the silent socket anyway.
        for _ in range(60):
            run = await (await client.get(f"/api/runs/{run_id}")).json()
            if run["status"] != "running" and run["status"] != "queued":
                break
            await asyncio.sleep(0.05)
    assert run["status"] == "finished"
    (round_1,) = run["rounds"]
    assert (round_1["clients"], round_1["dropped"]) == (["good"], ["bad"])
