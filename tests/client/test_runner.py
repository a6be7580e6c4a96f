"""The runner against a scripted coordinator: refusals, reconnects, giving up."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fednet.client.connection import Connection
from fednet.client.trainer import Trainer
from fednet.learning.datasets import load_csv
from fednet.protocol import Error, Fit, FitResult, Hello, UploadGrant, UploadRequest
from tests.client.conftest import (
    TIMEOUT,
    Peer,
    RunnerFactory,
    ScriptServer,
    assert_trained,
    fit_config,
    make_runner,
    params,
    wait_until,
)


async def test_error_reply_to_hello_refuses_and_gives_up(
    coordinator: ScriptServer,
) -> None:
    """An error instead of welcome: state "refused", then ConnectionError."""

    async def script(peer: Peer) -> None:
        await peer.expect(Hello)
        await peer.send(Error("name_taken", "site-3 is already connected"))

    server = await coordinator(script)
    runner = make_runner(server.url, max_retries=0)
    with pytest.raises(ConnectionError, match="gave up after 0 retries"):
        await asyncio.wait_for(runner.run(), TIMEOUT)
    assert runner.state.state == "refused"
    refusal = "refused by the server: site-3 is already connected"
    assert runner.state.last_error == refusal


async def test_closed_socket_is_redialled_with_a_fresh_connection(
    coordinator: ScriptServer,
    start_runner: RunnerFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After the server closes, the runner says hello again on a new Connection."""
    opened: list[Connection] = []

    class RecordingConnection(Connection):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            opened.append(self)

    monkeypatch.setattr("fednet.client.runner.Connection", RecordingConnection)
    hellos: list[Hello] = []

    async def first(peer: Peer) -> None:
        hellos.append(await peer.welcome(client_id="c-1"))

    async def second(peer: Peer) -> None:
        hellos.append(await peer.welcome(client_id="c-2"))
        await peer.hold()

    server = await coordinator(first, second)
    runner = start_runner(server.url)
    await wait_until(lambda: runner.state.client_id == "c-2")
    assert [h.instance for h in hellos] == [runner.instance] * 2
    assert len(opened) == 2 and opened[0] is not opened[1]
    assert runner.state.connects == 2


async def test_grant_from_an_old_connection_does_not_unblock_the_new_one(
    coordinator: ScriptServer, start_runner: RunnerFactory
) -> None:
    """A grant received before a reconnect is forgotten: the upload waits anew."""
    limits = {"part_bytes": 1024, "direct_upload_bytes": 1024}

    async def first(peer: Peer) -> None:
        await peer.welcome(**limits)
        await peer.send(UploadGrant(1, 1))

    async def second(peer: Peer) -> None:
        await peer.welcome(**limits)
        await peer.send(Fit(1, 1, fit_config(), params(2000)), part_bytes=1024)
        await peer.expect_status("training")
        await peer.expect_status("sending")
        await peer.expect(UploadRequest)
        with pytest.raises(TimeoutError):
            await peer.receive_frame(timeout=0.3)
        await peer.send(UploadGrant(1, 1))
        result = await peer.expect(FitResult)
        assert_trained(result.parameters, params(2000))

    server = await coordinator(first, second)
    start_runner(server.url)
    await server.finished(1)


async def test_gives_up_after_max_retries_failed_reconnects(
    coordinator: ScriptServer,
) -> None:
    """Closed before welcome each time: max_retries redials, then ConnectionError."""

    async def close_after_hello(peer: Peer) -> None:
        await peer.expect(Hello)

    server = await coordinator(*[close_after_hello] * 3)
    runner = make_runner(server.url, max_retries=2)
    with pytest.raises(ConnectionError, match="gave up after 2 retries"):
        await asyncio.wait_for(runner.run(), TIMEOUT)
    assert server.connections == 3 and runner.state.state == "disconnected"
    assert (runner.state.last_error or "").startswith("closed before welcome")


async def test_a_rare_category_never_reaches_the_wire(
    coordinator: ScriptServer, tmp_path: Path
) -> None:
    """A category seen 3 times at a site is in no frame it sends, name or count."""
    rows = [f"{i},{'rare' if i < 3 else 'common'},{'ab'[i % 2]}" for i in range(40)]
    path = tmp_path / "site.csv"
    path.write_text("age,kind,label\n" + "\n".join(rows) + "\n")
    frames: list[str] = []

    async def script(peer: Peer) -> None:
        frames.append((await peer.receive_frame()).data)

    server = await coordinator(script)
    runner = make_runner(server.url, max_retries=0)
    runner.trainer = Trainer(load_csv(path, "label"))
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(runner.run(), TIMEOUT)

    hello = json.loads(frames[0])
    assert hello["type"] == "hello" and hello["schema"]["categorical"] == ["kind"]
    assert hello["stats"]["categories"] == {"1": {"common": hello["stats"]["rows"]
                                                  - _rare_in_train(runner)}}
    assert "rare" not in frames[0]


def _rare_in_train(runner: Any) -> int:
    data = runner.trainer._data
    return int(np.sum(data.raw_train[:, 1] == data.categories[1].index("rare")))
