"""The client's bounds: grant deadline, work queue, hello size, status port."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from fednet import cli
from fednet.client.main import serve_client
from fednet.client.trainer import Trainer
from fednet.client.work import MAX_QUEUED_REQUESTS, UploadGrants
from fednet.learning.datasets import load_csv
from fednet.protocol import (
    MAX_HELLO_CHARS,
    Error,
    Evaluate,
    EvaluateResult,
    Fit,
    FitResult,
    Hello,
    Status,
    UploadGrant,
    UploadRequest,
    serialize,
)
from tests.client.conftest import (
    Peer,
    RunnerFactory,
    ScriptServer,
    fit_config,
    make_runner,
    params,
    wait_until,
)

GRANT_WAIT_S = 0.3
SMALL_PARTS = {"part_bytes": 1024, "direct_upload_bytes": 1024}


async def test_no_grant_in_time_gives_up_the_result_and_answers_the_next_fit(
    coordinator: ScriptServer,
    start_runner: RunnerFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past GRANT_WAIT_S the upload is dropped, the client idles, then serves on."""
    monkeypatch.setattr("fednet.client.work.GRANT_WAIT_S", GRANT_WAIT_S)

    async def script(peer: Peer) -> None:
        await peer.welcome(**SMALL_PARTS)
        await peer.send(Fit(1, 1, fit_config(), params(2000)), part_bytes=1024)
        await peer.expect_status("training")
        await peer.expect_status("sending")
        await peer.expect(UploadRequest)
        started = asyncio.get_running_loop().time()
        await peer.expect_status("idle")
        assert asyncio.get_running_loop().time() - started >= GRANT_WAIT_S * 0.9
        await peer.send(Fit(1, 2, fit_config(2), params()))
        await peer.expect_status("training")
        await peer.expect_status("sending")
        result = await peer.expect(FitResult)
        assert result.server_round == 2

    server = await coordinator(script)
    start_runner(server.url)
    await server.finished()


async def test_a_refused_upload_is_given_up_at_once(
    coordinator: ScriptServer,
    start_runner: RunnerFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """upload_refused for the round ends the wait for a grant: the client idles."""
    monkeypatch.setattr("fednet.client.work.GRANT_WAIT_S", 60.0)

    async def script(peer: Peer) -> None:
        await peer.welcome(**SMALL_PARTS)
        await peer.send(Fit(1, 1, fit_config(), params(2000)), part_bytes=1024)
        await peer.expect_status("training")
        await peer.expect_status("sending")
        await peer.expect(UploadRequest)
        await peer.send(Error("upload_refused", "not awaited", 1, 1))
        await asyncio.wait_for(peer.expect_status("idle"), 10)

    server = await coordinator(script)
    start_runner(server.url)
    await server.finished()


async def test_a_full_work_queue_drops_its_oldest_requests(
    coordinator: ScriptServer, start_runner: RunnerFactory
) -> None:
    """Two requests past MAX_QUEUED_REQUESTS: the two oldest are never answered."""
    queued = range(2, 2 + MAX_QUEUED_REQUESTS + 2)

    async def script(peer: Peer) -> None:
        await peer.welcome(**SMALL_PARTS)
        # The worker waits for this fit's grant while the evaluates queue up.
        await peer.send(Fit(1, 1, fit_config(), params(2000)), part_bytes=1024)
        await peer.expect_status("training")
        await peer.expect_status("sending")
        await peer.expect(UploadRequest)
        for server_round in queued:
            await peer.send(Evaluate(1, server_round, fit_config(), params()))
        await peer.send(UploadGrant(1, 1))
        answered: list[int] = []
        while len(answered) < 1 + MAX_QUEUED_REQUESTS:
            message = await peer.receive()
            if isinstance(message, (FitResult, EvaluateResult)):
                answered.append(message.server_round)
            else:
                assert isinstance(message, Status), message
        assert answered == [1, *queued[2:]]

    server = await coordinator(script)
    start_runner(server.url)
    await server.finished()


@pytest.fixture
def wide_csv(tmp_path: Path) -> Path:
    """Write a 2-row CSV of 100,000 columns whose header alone is over the limit."""
    names = [f"measurement_{i:06d}" for i in range(99_999)]
    path = tmp_path / "wide.csv"
    rows = [",".join([*names, "label"]), ",".join(["1"] * 99_999 + ["a"])]
    rows.append(",".join(["2"] * 99_999 + ["b"]))
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture
def dials(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Record every WebSocket the process tries to open, opening none."""
    urls: list[str] = []

    def ws_connect(self: aiohttp.ClientSession, url: str, **kwargs: Any) -> Any:
        urls.append(url)
        raise AssertionError("dialled")

    monkeypatch.setattr(aiohttp.ClientSession, "ws_connect", ws_connect)
    yield urls


def test_a_hello_over_the_text_limit_exits_2_without_dialling(
    wide_csv: Path,
    dials: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """100,000 CSV columns: exit 2 naming the columns and the limit, no retries."""
    monkeypatch.setattr(cli, "configure_logging", lambda level, fmt: None)
    argv = ["client", "--data", str(wide_csv), "--label-column", "label"]
    argv += ["--server", "ws://127.0.0.1:9/ws", "--client-host", "127.0.0.1"]
    argv += ["--client-port", "0"]

    code = cli.main(argv)

    err = capsys.readouterr().err
    assert code == 2 and dials == []
    assert "99999 feature columns" in err and f"limit of {MAX_HELLO_CHARS}" in err


def test_statistics_too_long_for_a_hello_are_left_out_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """6,000 columns: names fit in a hello, their statistics do not; names go alone."""
    rng = np.random.default_rng(0)
    path = tmp_path / "wide.csv"
    lines = [",".join([f"f{i}" for i in range(6000)] + ["label"])]
    lines += [",".join([*map(repr, rng.random(6000).tolist()), "ab"[r % 2]])
              for r in range(15)]
    path.write_text("\n".join(lines) + "\n")
    trainer = Trainer(load_csv(path, "label"))
    runner = make_runner("ws://127.0.0.1:9/ws")
    runner.trainer = trainer
    assert trainer.stats is not None
    full = Hello(name="n", instance="i", num_examples=1, task="csv",
                 schema=trainer.schema.to_dict() if trainer.schema else None,
                 stats=trainer.stats)
    assert len(serialize(full)) > MAX_HELLO_CHARS

    with caplog.at_level(logging.WARNING):
        runner.check_hello()

    assert "feature statistics left out of the hello" in caplog.text
    hello = runner._hello()
    assert hello.stats is None and hello.schema is not None
    assert len(serialize(hello)) <= MAX_HELLO_CHARS


@pytest.fixture
def taken_port() -> Iterator[int]:
    """Return a port of 127.0.0.1 that another process listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


async def test_a_taken_status_port_moves_the_status_page_and_the_client_joins(
    coordinator: ScriptServer,
    taken_port: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Port in use: a warning, the status page on a free port, the client joins."""

    async def script(peer: Peer) -> None:
        await peer.welcome(client_id="c-7")
        await peer.hold()

    caplog.set_level(logging.INFO, logger="fednet.client")
    server = await coordinator(script)
    runner = make_runner(server.url, host="127.0.0.1", port=taken_port)
    task = asyncio.create_task(serve_client(runner, "no data"))
    try:
        await wait_until(lambda: runner.state.client_id == "c-7")
        (page,) = [r for r in caplog.records if r.msg.startswith("status page on")]
        assert isinstance(page.args, tuple)
        port = page.args[1]
        assert isinstance(port, int) and port not in (taken_port, 0)
        url = f"http://127.0.0.1:{port}/healthz"
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            assert (await response.json())["client_id"] == "c-7"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert f"status port {taken_port} is taken" in caplog.text


async def test_a_grant_wait_cancelled_as_the_grant_arrives_is_cancelled() -> None:
    """A connection closing just as its grant comes: the upload must not go on."""
    grants = UploadGrants()
    key = (1, 1)
    grants.expect(key)
    waiting = asyncio.create_task(grants.wait(key))
    await asyncio.sleep(0.01)
    grants.grant(key)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
