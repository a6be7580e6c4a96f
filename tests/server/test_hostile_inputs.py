"""Hostile inputs: inflated weights, overflowing metrics, huge ids, deep nesting."""

from __future__ import annotations

import asyncio
import io
import json
import random
from dataclasses import replace
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from fednet.client.main import load_client_data
from fednet.client.runner import ClientRunner
from fednet.client.trainer import Trainer
from fednet.settings import ClientSettings
from fednet.fields import MAX_EXAMPLES
from fednet.machine import Fold, bound_evaluation
from fednet.protocol import (
    Error,
    Evaluate,
    EvaluateResult,
    Fit,
    FitResult,
    Hello,
    Message,
    Status,
)
from fednet.records import WeightedMean
from fednet.server.dashboard import strict_dumps
from fednet.strategies import FedAvg
from fednet.typing import ClientId
from tests.server.conftest import AppFactory, receive, send

Client = TestClient[Any, web.Application]
HUGE = "99999999999999999999"
SYNTHETIC = {"task": "synthetic", "rounds": 1, "min_clients": 2}


def _strict_loads(text: str) -> Any:
    """Parse JSON as browsers do: NaN and Infinity are errors."""

    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


async def _next(ws: aiohttp.ClientWebSocketResponse, kind: type[Message]) -> Any:
    """Return the next message of type ``kind`` within 10 s, skipping others.

    A deadline of its own: the server's pings restart ``receive``'s timeout.
    """
    async with asyncio.timeout(10):
        while not isinstance(message := await receive(ws), kind):
            pass
    return message


async def _connected(client: Client, count: int) -> None:
    for _ in range(400):
        clients = await (await client.get("/api/clients")).json()
        if sum(c["status"] != "disconnected" for c in clients) >= count:
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"fewer than {count} clients connected")


async def _ended(client: Client, run_id: int) -> Any:
    for _ in range(600):
        run = _strict_loads(await (await client.get(f"/api/runs/{run_id}")).text())
        if run["status"] not in ("queued", "running"):
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} did not end")


async def _launch(client: Client) -> int:
    response = await client.post("/api/runs", json=SYNTHETIC)
    return int((await response.json())["id"])


@asynccontextmanager
async def _honest(client: Client, dataset: str = "synthetic") -> AsyncIterator[None]:
    """Run two clients, s1 and s2 (synthetic updates: offsets 1e-3 and 2e-3)."""
    url = str(client.make_url("/ws")).replace("http://", "ws://")
    runners = []
    for i in (1, 2):
        settings = ClientSettings(
            server=url, name=f"s{i}", dataset=dataset, partition=(i, 2)
        )
        trainer = Trainer(load_client_data(settings)[0], client_number=i)
        runners.append(ClientRunner(settings, trainer, random.Random(i)))
    tasks = [asyncio.create_task(r.run()) for r in runners]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _inflated_round(make_client: AppFactory, num_examples: int) -> Any:
    """Play one round where "mallory" (hello: 100) claims ``num_examples``."""
    client = await make_client()
    async with client.ws_connect("/ws") as ws, _honest(client):
        await send(ws, Hello("mallory", "i-m", 100, "synthetic"))
        await receive(ws)
        await _connected(client, 3)
        run_id = await _launch(client)
        fit = await _next(ws, Fit)
        ones = [np.ones_like(p) for p in fit.parameters]
        await send(ws, FitResult(run_id, fit.server_round, num_examples, {}, ones))
        error = await _next(ws, Error)
        run = await _ended(client, run_id)
    model = await (await client.get(f"/api/runs/{run_id}/model")).read()
    with np.load(io.BytesIO(model)) as saved:
        params = saved["arr_0"]
    return error, run, params


async def test_an_update_heavier_than_its_hello_is_rejected(
    make_client: AppFactory,
) -> None:
    """num_examples 2**62 after a hello of 100: invalid_update; honest mean kept."""
    error, run, params = await _inflated_round(make_client, 2**62)
    assert error.code == "invalid_update" and "declared at hello" in error.message
    assert run["status"] == "finished", run
    assert run["rounds"][0]["clients"] == ["s1", "s2"]
    assert "mallory" in run["rounds"][0]["rejected"]
    np.testing.assert_allclose(params, np.full_like(params, 1.5e-3), rtol=1e-5)


async def test_an_int64_max_weight_never_reaches_the_store(
    make_client: AppFactory,
) -> None:
    """num_examples 2**63-1 is rejected; the round is recorded, the run finishes."""
    error, run, _ = await _inflated_round(make_client, 2**63 - 1)
    assert error.code == "invalid_update"
    assert run["status"] == "finished", run
    assert run["rounds"][0]["num_examples"] == 2


async def test_an_evaluation_heavier_than_its_hello_counts_for_nothing(
    make_client: AppFactory,
) -> None:
    """An evaluate_result of 10**9 rows after a hello of 100 cannot set the loss."""
    client = await make_client()
    async with _honest(client, "digits"):
        await _connected(client, 2)
        clients = await (await client.get("/api/clients")).json()
        schema = clients[0]["schema"]  # public: mallory copies a real site's
        async with client.ws_connect("/ws") as ws:
            await send(ws, Hello("mallory", "i-m", 100, "digits", schema))
            await receive(ws)
            body = {**SYNTHETIC, "task": "digits", "min_clients": 3}
            response = await client.post("/api/runs", json=body)
            run_id = int((await response.json())["id"])
            fit = await _next(ws, Fit)
            await send(ws, FitResult(run_id, 1, 100, {}, fit.parameters))
            evaluate = await _next(ws, Evaluate)
            claim = EvaluateResult(run_id, evaluate.server_round, 10**9, 1e6, {})
            await send(ws, claim)
            error = await _next(ws, Error)
            run = await _ended(client, run_id)
    assert error.code == "invalid_update" and "num_examples" in error.message
    assert run["status"] == "finished", run
    assert sorted(run["rounds"][0]["evaluated_clients"]) == ["s1", "s2"]
    assert run["rounds"][0]["federated_loss"] < 10


def test_bound_evaluation_allows_a_validation_split_under_90_percent() -> None:
    """9 validation rows per declared training row pass; one more counts for 0."""
    fair = EvaluateResult(1, 1, 900, 0.5, {"accuracy": 0.9})
    assert bound_evaluation(fair, 100) == (fair, None)
    counted, error = bound_evaluation(replace(fair, num_examples=901), 100)
    assert counted.num_examples == 0 and counted.loss == 0.5
    assert error is not None and error.code == "invalid_update"
    assert (error.run_id, error.server_round) == (1, 1)


async def test_a_hello_above_max_examples_is_refused(make_client: AppFactory) -> None:
    """A hello declaring more than MAX_EXAMPLES gets invalid_hello and 1008."""
    client = await make_client()
    async with client.ws_connect("/ws") as ws:
        await send(ws, Hello("big", "i", MAX_EXAMPLES + 1, "synthetic"))
        error = await receive(ws)
        assert isinstance(error, Error) and error.code == "invalid_hello"
        closing = await ws.receive()
        assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 1008


def test_a_fold_above_its_bound_is_not_folded() -> None:
    """A Fold whose num_examples exceeds max_examples records why, folds nothing."""
    aggregator = FedAvg().aggregator([np.zeros(3, np.float32)])
    result = FitResult(1, 1, 101, {}, [np.ones(3, np.float32)])
    fold = Fold(ClientId("c"), result, aggregator, max_examples=100)
    fold.run()
    assert fold.error == "num_examples 101 exceeds the 100 declared at hello"
    assert aggregator.count == 0


async def test_overflowing_metrics_give_strict_json(make_client: AppFactory) -> None:
    """Metrics of 1e308 from two clients (their sum overflows) stay strict JSON."""
    client = await make_client()
    async with client.ws_connect("/ws") as a, client.ws_connect("/ws") as b:
        for ws, name in ((a, "a"), (b, "b")):
            await send(ws, Hello(name, "i", 1, "synthetic"))
            await receive(ws)
        run_id = await _launch(client)
        for ws in (a, b):
            fit = await _next(ws, Fit)
            result = FitResult(run_id, 1, 1, {"x": 1e308}, list(fit.parameters))
            await send(ws, result)
        run = await _ended(client, run_id)
    assert run["status"] == "finished", run
    assert run["rounds"][0]["fit_metrics"] == {"x": 1e308}


def test_strict_dumps_writes_nan_and_infinities_as_null() -> None:
    """The one JSON encoder of the API and the pages never writes NaN/Infinity."""
    data = {"loss": float("nan"), "xs": (float("inf"), -float("inf"), 1.5)}
    assert _strict_loads(strict_dumps(data)) == {"loss": None, "xs": [None, None, 1.5]}


def test_weighted_mean_of_overflowing_values_stays_finite() -> None:
    """Means are running means: 1e308 and 1.7e308 average finitely."""
    mean = WeightedMean()
    mean.add({"x": 1e308}, 3)
    mean.add({"x": 1.7e308}, 10**9)
    expected = 1.7e308 - 0.7e308 * (3 / (3 + 10**9))  # the mean, computed finitely
    assert mean.result()["x"] == pytest.approx(expected, rel=1e-12)


def test_weighted_mean_skips_non_finite_values_and_empty_weights() -> None:
    """A NaN or infinite value, or a weight <= 0, does not move the mean."""
    mean = WeightedMean()
    mean.add({"x": 2.0}, 1)
    mean.add({"x": float("inf"), "y": float("nan")}, 5)
    mean.add({"x": 100.0}, 0)
    assert mean.result() == {"x": 2.0}


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", f"/api/runs/{HUGE}"),
        ("POST", f"/api/runs/{HUGE}/stop"),
        ("GET", f"/api/runs/{HUGE}/model"),
        ("GET", f"/runs/{HUGE}"),
        ("GET", f"/runs/{HUGE}/rounds"),
        ("GET", "/api/runs/-9223372036854775809"),
    ],
)
async def test_run_ids_beyond_int64_are_404(
    make_client: AppFactory, method: str, path: str
) -> None:
    """A run id SQLite cannot hold names no run: 404, not a 500."""
    client = await make_client()
    response = await client.request(method, path)
    assert response.status == 404


async def test_a_since_beyond_int64_is_400(make_client: AppFactory) -> None:
    """GET /runs/N/rounds?since=<huge> of a run is a bad request, not a 500."""
    client = await make_client()
    run_id = await _launch(client)  # queued: it waits for clients
    response = await client.get(f"/runs/{run_id}/rounds?since={HUGE}")
    assert response.status == 400


async def test_a_deeply_nested_text_frame_is_a_protocol_error(
    make_client: AppFactory,
) -> None:
    """200000 "[" in a text frame: protocol_error reply, the socket stays open."""
    client = await make_client()
    async with client.ws_connect("/ws") as ws:
        await send(ws, Hello("deep", "i", 1, "synthetic"))
        await receive(ws)
        await ws.send_str("[" * 200_000)
        error = await receive(ws)
        assert isinstance(error, Error) and error.code == "protocol_error"
        await send(ws, Status("idle"))
        status = await (await client.get("/api/status")).json()
        assert status["clients_connected"] == 1 and not ws.closed


async def test_a_deeply_nested_launch_body_is_400(make_client: AppFactory) -> None:
    """POST /api/runs with 200000 nested arrays answers 400, not a 500."""
    client = await make_client()
    response = await client.post(
        "/api/runs", data="[" * 200_000, headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert (await response.json())["error"] == "body must be a JSON object"
