"""Upload slots bound large transfers in flight; a whole run with large updates."""

from __future__ import annotations

import asyncio
import io
import random
from typing import Any

import aiohttp
import numpy as np

from fednet.client.runner import ClientRunner
from fednet.client.trainer import Trainer
from fednet.settings import ClientSettings
from fednet.protocol import (
    Error,
    FitResult,
    Hello,
    UploadRequest,
    parse,
    serialize_parts,
)
from fednet.server.keys import UPLOADS
from fednet.server.uploads import UploadGate
from tests.server.conftest import AppFactory, receive, send


class _FakeConn:
    """Stands in for a ClientConn: records what it was sent."""

    def __init__(self, name: str) -> None:
        self.client_id = name
        self.connected = True
        self.sent: list[Any] = []

    async def send(self, parts: list[Any]) -> bool:
        self.sent += [parse(p) for p in parts]
        return self.connected


async def test_gate_grants_only_free_slots_in_arrival_order() -> None:
    """With one slot the second request waits until the first upload finished."""
    gate = UploadGate(slots=1)
    a, b, c = _FakeConn("a"), _FakeConn("b"), _FakeConn("c")
    await gate.request(a, UploadRequest(1, 1, 10**8))  # type: ignore[arg-type]
    await gate.request(b, UploadRequest(1, 1, 10**8))  # type: ignore[arg-type]
    await gate.request(c, UploadRequest(1, 1, 10**8))  # type: ignore[arg-type]
    await gate.settled()
    assert [len(x.sent) for x in (a, b, c)] == [1, 0, 0]
    assert (gate.in_flight, gate.waiting) == (1, 2)
    b.connected = False
    await gate.finished(a)  # type: ignore[arg-type]
    await gate.settled()
    assert [len(x.sent) for x in (a, b, c)] == [1, 0, 1]
    assert c.sent[0].type == "upload_grant" and gate.waiting == 0


async def test_gate_frees_the_slot_of_a_client_that_left() -> None:
    """A granted client that disconnects does not hold its slot forever."""
    gate = UploadGate(slots=1)
    a, b = _FakeConn("a"), _FakeConn("b")
    await gate.request(a, UploadRequest(1, 1, 10**8))  # type: ignore[arg-type]
    await gate.request(b, UploadRequest(1, 1, 10**8))  # type: ignore[arg-type]
    a.connected = False
    await gate.finished(a)  # type: ignore[arg-type]
    await gate.settled()
    assert len(b.sent) == 1 and gate.in_flight == 1


async def test_large_synthetic_updates_travel_in_parts_through_the_gate(
    make_client: AppFactory,
) -> None:
    """8 MB updates (over the 1 MiB direct limit) arrive and average exactly."""
    client = await make_client()
    url = str(client.make_url("/ws")).replace("http://", "ws://")
    runners = [
        ClientRunner(
            ClientSettings(
                server=url, name=f"s{i}", dataset="synthetic", partition=(i, 3)
            ),
            Trainer(None, client_number=i),
            random.Random(i),
        )
        for i in (1, 2, 3)
    ]
    tasks = [asyncio.create_task(r.run()) for r in runners]
    try:
        body = {
            "task": "synthetic",
            "synthetic_params": 2_000_000,
            "rounds": 2,
            "min_clients": 3,
        }
        run_id = (await (await client.post("/api/runs", json=body)).json())["id"]
        for _ in range(600):
            run = await (await client.get(f"/api/runs/{run_id}")).json()
            if run["status"] not in ("queued", "running"):
                break
            await asyncio.sleep(0.05)
        status = await (await client.get("/api/status")).json()
        granted = client.app[UPLOADS].granted_total
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert run["status"] == "finished", run
    assert [r["clients"] for r in run["rounds"]] == [["s1", "s2", "s3"]] * 2
    model = await (await client.get(f"/api/runs/{run_id}/model")).read()
    with np.load(io.BytesIO(model)) as saved:
        params = saved["arr_0"]
    # Each round adds the mean offset 1e-3 * (1 + 2 + 3) / 3 = 2e-3.
    np.testing.assert_allclose(params, np.full(2_000_000, 4e-3, np.float32), rtol=1e-5)
    assert status["stats"]["bytes_received"] > 2 * 3 * 8_000_000
    assert granted == 2 * 3


async def test_multi_part_upload_without_a_grant_is_refused(
    make_client: AppFactory,
) -> None:
    """Joining a large frame needs a slot: without one the socket is closed (1008)."""
    client = await make_client()
    async with client.ws_connect("/ws") as ws:
        await send(ws, Hello("greedy", "i", 1, "synthetic"))
        await receive(ws)
        result = FitResult(1, 1, 1, {}, [np.zeros(1_000_000, np.float32)])
        await ws.send_bytes(bytes(serialize_parts(result)[0]))
        error = await receive(ws)
        assert isinstance(error, Error) and error.code == "upload_not_granted"
        closing = await ws.receive()
        assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 1008
    status = await (await client.get("/api/status")).json()
    assert status["stats"]["rejected:upload_not_granted"] == 1
