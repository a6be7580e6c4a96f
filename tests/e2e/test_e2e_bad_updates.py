"""A hostile client speaking the wire format by hand cannot touch the global model."""

from __future__ import annotations

import asyncio
import json
import math
import struct
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import numpy as np
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

RUN = {
    "task": "digits",
    "model": "logreg",
    "rounds": 3,
    "min_clients": 3,
    "local_epochs": 5,
    "batch_size": 32,
    "learning_rate": 0.1,
    "seed": 0,
    "round_timeout_s": 60.0,
}
HONEST = ["site-1", "site-2", "site-3"]


def encode_frame(header: dict[str, Any], arrays: list[np.ndarray]) -> bytes:
    """Build a binary frame as docs/protocol.md lays it out: length, JSON, arrays."""
    meta = [{"dtype": a.dtype.str, "shape": list(a.shape)} for a in arrays]
    head = json.dumps({**header, "arrays": meta}).encode()
    out = bytearray(struct.pack(">I", len(head)) + head)
    for array in arrays:
        out += bytes(-len(out) % 8)
        out += np.ascontiguousarray(array).tobytes()
    return bytes(out)


def decode_frame(frame: bytes) -> tuple[dict[str, Any], list[np.ndarray]]:
    """Split a binary frame into its JSON header and its arrays."""
    (length,) = struct.unpack_from(">I", frame)
    header = json.loads(frame[4 : 4 + length])
    offset, arrays = 4 + length, []
    for meta in header.pop("arrays"):
        offset += -offset % 8
        count = math.prod(meta["shape"])
        array = np.frombuffer(frame, meta["dtype"], count, offset)
        arrays.append(array.reshape(meta["shape"]))
        offset += array.nbytes
    return header, arrays


@dataclass
class Mallory:
    """A client that answers every ``fit`` with something the server must refuse."""

    ws: aiohttp.ClientWebSocketResponse
    errors: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)

    async def expect_error(self, after: str) -> dict[str, Any]:
        """Wait for the server's next text frame; it must be an ``error``."""
        frame = await self.ws.receive(timeout=60)
        assert frame.type == aiohttp.WSMsgType.TEXT, f"after {after}: {frame}"
        reply: dict[str, Any] = json.loads(frame.data)
        assert reply["type"] == "error", f"after {after}: {reply}"
        self.errors.append((after, reply))
        return reply

    async def fit_result(self, fit: dict[str, Any], arrays: list[np.ndarray]) -> None:
        """Send a ``fit_result`` for the round of ``fit`` with the given arrays."""
        header = {
            "type": "fit_result",
            "run_id": fit["run_id"],
            "server_round": fit["server_round"],
            "num_examples": 500,
            "metrics": {},
        }
        await self.ws.send_bytes(encode_frame(header, arrays))

    async def serve(self) -> None:
        """Answer each fit: round 1 malformed + wrong shape, then NaN, then inf."""
        async for frame in self.ws:
            if frame.type != aiohttp.WSMsgType.BINARY:
                continue
            fit, (weights, bias) = decode_frame(frame.data)
            assert fit["type"] == "fit"
            self.rounds.append(fit["server_round"])
            if fit["server_round"] == 1:
                await self.ws.send_str('{"type": "fit_result", "run_id": ')
                await self.expect_error("malformed text frame")
                await self.ws.send_bytes(struct.pack(">I", 1000) + b"{}")
                await self.expect_error("malformed binary frame")
                await self.fit_result(fit, [weights.T.copy(), bias])
                await self.expect_error("wrong-shaped update")
            else:
                bad = weights.copy()
                bad[3, 4] = np.nan if fit["server_round"] == 2 else np.inf
                await self.fit_result(fit, [bad, bias])
                await self.expect_error(f"non-finite update {fit['server_round']}")


async def test_bad_frames_and_updates_leave_the_model_bit_for_bit_unchanged(
    cluster: Any, server: Any
) -> None:
    """Malformed frames, bad updates get errors; the model equals an honest run's."""
    await asyncio.to_thread(cluster.digits_clients, server, 3)
    schema = server.api.get("/api/clients")[0]["schema"]
    hello = {
        "type": "hello",
        "name": "mallory",
        "instance": "m-1",
        "num_examples": 500,
        "task": "digits",
        "schema": schema,
        "protocol_version": 1,
    }
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(server.ws_url) as ws:
            await ws.send_str(json.dumps(hello))
            welcome = json.loads((await ws.receive(timeout=30)).data)
            assert welcome["type"] == "welcome" and welcome["client_id"] == "mallory"
            mallory = Mallory(ws)
            serving = asyncio.create_task(mallory.serve())
            await asyncio.to_thread(server.wait_for_clients, 4, [])
            attacked_id = server.api.launch(**RUN)
            attacked = await asyncio.to_thread(server.wait_for_run, attacked_id)
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)
    await asyncio.to_thread(
        server.wait_for,
        lambda: all(c["name"] != "mallory" for c in server.connected()),
        "mallory to leave",
    )
    honest_id = server.api.launch(**RUN)
    honest = await asyncio.to_thread(server.wait_for_run, honest_id)

    assert attacked["status"] == honest["status"] == "finished", attacked["error"]
    assert mallory.rounds == [1, 2, 3]
    codes = [(after, reply["code"]) for after, reply in mallory.errors]
    assert codes == [
        ("malformed text frame", "protocol_error"),
        ("malformed binary frame", "protocol_error"),
        ("wrong-shaped update", "invalid_update"),
        ("non-finite update 2", "invalid_update"),
        ("non-finite update 3", "invalid_update"),
    ]
    for entry in attacked["rounds"]:
        assert sorted(entry["clients"]) == HONEST
        assert list(entry["rejected"]) == ["mallory"]
    assert "shape" in attacked["rounds"][0]["rejected"]["mallory"]
    assert "NaN" in attacked["rounds"][1]["rejected"]["mallory"]
    attacked_model = server.api.model(attacked_id)
    honest_model = server.api.model(honest_id)
    for bad, good in zip(attacked_model, honest_model, strict=True):
        assert bad.dtype == good.dtype and bad.tobytes() == good.tobytes()
    accuracies = [[r["accuracy"] for r in run["rounds"]] for run in (attacked, honest)]
    assert accuracies[0] == accuracies[1]
