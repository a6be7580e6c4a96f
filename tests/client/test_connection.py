"""One connection against a scripted coordinator: handshake, work, keepalive."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import pytest

from fednet.protocol import (
    Error,
    Evaluate,
    EvaluateResult,
    Fit,
    FitResult,
    Hello,
    Message,
    Status,
    UploadGrant,
    UploadRequest,
)
from fednet.typing import NDArrays
from tests.client.conftest import (
    Peer,
    RunnerFactory,
    ScriptServer,
    assert_trained,
    fit_config,
    params,
    wait_until,
)


async def test_hello_says_who_the_client_is_and_welcome_sets_its_id(
    coordinator: ScriptServer, start_runner: RunnerFactory
) -> None:
    """Hello carries name, instance, examples and task; the welcome's id is kept."""
    hellos: list[Hello] = []

    async def script(peer: Peer) -> None:
        hellos.append(await peer.welcome(client_id="c-42"))
        await peer.hold()

    server = await coordinator(script)
    runner = start_runner(server.url)
    await wait_until(lambda: runner.state.client_id == "c-42")
    assert runner.state.state == "connected" and runner.state.connects == 1
    (hello,) = hellos
    assert (hello.name, hello.instance) == ("site-3", runner.instance)
    assert (hello.num_examples, hello.task) == (1, "synthetic")


async def test_fit_reports_training_then_sending_then_result_then_idle(
    coordinator: ScriptServer, start_runner: RunnerFactory
) -> None:
    """A fit gets status training, status sending, its fit_result, status idle."""

    async def script(peer: Peer) -> None:
        await peer.welcome()
        await peer.send(Fit(1, 1, fit_config(), params()))
        await peer.expect_status("training")
        await peer.expect_status("sending")
        result = await peer.expect(FitResult)
        assert (result.run_id, result.server_round, result.num_examples) == (1, 1, 1)
        assert_trained(result.parameters, params())
        await peer.expect_status("idle")

    server = await coordinator(script)
    runner = start_runner(server.url)
    await server.finished()
    assert runner.state.rounds_trained == 1


async def test_large_result_waits_for_a_grant_then_arrives_in_contiguous_parts(
    coordinator: ScriptServer, start_runner: RunnerFactory
) -> None:
    """Over direct_upload_bytes: upload_request, nothing until the grant, parts."""
    # 16 MB in 64 KiB parts fill the socket's buffers, so sending them waits,
    # while a keepalive every millisecond tries to come in between.
    model = params(4_000_000)
    sizes = {"part_bytes": 1 << 16, "direct_upload_bytes": 1024}

    async def script(peer: Peer) -> None:
        await peer.welcome(heartbeat_s=1e-3, **sizes)
        await peer.send(Fit(7, 2, fit_config(2), model), sizes["part_bytes"])
        states, request = await _statuses_then_message(peer)
        assert states[-2:] == ["training", "sending"], states
        assert isinstance(request, UploadRequest), request
        assert (request.run_id, request.server_round) == (7, 2)
        await _expect_only_status_for(peer, 0.3)
        await peer.send(UploadGrant(7, 2))
        frames, result = await _receive_parts(peer)
        assert len(frames) > 200 and sum(len(f) for f in frames) == request.nbytes
        assert isinstance(result, FitResult)
        assert (result.run_id, result.server_round) == (7, 2)
        assert_trained(result.parameters, model)

    server = await coordinator(script)
    start_runner(server.url)
    await server.finished()


async def test_evaluate_reports_evaluating_then_its_result(
    coordinator: ScriptServer, start_runner: RunnerFactory
) -> None:
    """An evaluate gets status evaluating, then an evaluate_result."""

    async def script(peer: Peer) -> None:
        await peer.welcome()
        await peer.send(Evaluate(1, 3, fit_config(3), params()))
        await peer.expect_status("evaluating")
        result = await peer.expect(EvaluateResult)
        assert result == EvaluateResult(1, 3, 1, 0.0, {})
        await peer.expect_status("idle")

    server = await coordinator(script)
    start_runner(server.url)
    await server.finished()


async def test_idle_client_repeats_its_status_every_heartbeat(
    coordinator: ScriptServer, start_runner: RunnerFactory
) -> None:
    """With a short heartbeat_s, status idle arrives again and again unasked."""

    async def script(peer: Peer) -> None:
        await peer.welcome(heartbeat_s=0.05)
        for _ in range(3):
            await peer.expect_status("idle")

    server = await coordinator(script)
    start_runner(server.url)
    await server.finished()


async def test_malformed_frame_is_logged_and_the_connection_goes_on(
    coordinator: ScriptServer,
    start_runner: RunnerFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A frame that does not parse is logged and skipped; the next fit is served."""

    async def script(peer: Peer) -> None:
        await peer.welcome()
        await peer.ws.send_str('{"type": "no_such_message"}')
        await peer.ws.send_bytes(b"\x00\x01")
        await peer.send(Fit(1, 1, fit_config(), params()))
        await peer.expect_status("training")
        await peer.expect_status("sending")
        await peer.expect(FitResult)

    caplog.set_level(logging.WARNING, logger="fednet.client")
    server = await coordinator(script)
    start_runner(server.url)
    await server.finished()
    malformed = [r for r in caplog.records if "malformed frame" in r.getMessage()]
    assert len(malformed) == 2
    assert all(r.levelno == logging.WARNING for r in malformed)


async def _statuses_then_message(peer: Peer) -> tuple[list[str], Message]:
    """Return the states of the statuses before the next other message, and it."""
    states: list[str] = []
    message = await peer.receive()
    while isinstance(message, Status):
        if not states or states[-1] != message.state:
            states.append(message.state)
        message = await peer.receive()
    return states, message


async def _expect_only_status_for(peer: Peer, seconds: float) -> None:
    """Check that for ``seconds`` the client sends keepalive statuses only."""
    try:
        async with asyncio.timeout(seconds):
            while True:
                frame = await peer.receive_frame()
                assert frame.type is aiohttp.WSMsgType.TEXT, "result before grant"
                assert peer.reader.feed(frame.data) == Status("sending")
    except TimeoutError:
        return


async def _receive_parts(peer: Peer) -> tuple[list[bytes], Message]:
    """Return the parts of the next binary message, and the message they make.

    Keepalive statuses before its first part are skipped; nothing may come
    between its parts.
    """
    frame = await peer.receive_frame()
    while frame.type is aiohttp.WSMsgType.TEXT:
        assert peer.reader.feed(frame.data) == Status("sending")
        frame = await peer.receive_frame()
    frames: list[bytes] = [frame.data]
    message = peer.reader.feed(frame.data)
    while message is None:
        frame = await peer.receive_frame()
        assert frame.type is aiohttp.WSMsgType.BINARY, "a message between parts"
        frames.append(frame.data)
        message = peer.reader.feed(frame.data)
    return frames, message


async def test_a_trainer_crash_is_reported_and_the_client_answers_on(
    coordinator: ScriptServer,
    start_runner: RunnerFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An unexpected trainer error gets a client_error reply, not a silent client."""
    calls = 0

    def crash_once(parameters: NDArrays, config: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("out of GPU memory")
        return original(parameters, config)

    async def script(peer: Peer) -> None:
        await peer.welcome()
        await peer.send(Fit(1, 1, fit_config(), params()))
        await peer.expect_status("training")
        error = await peer.expect(Error)
        assert error.code == "client_error" and "out of GPU memory" in error.message
        await peer.expect_status("idle")
        await peer.send(Fit(1, 2, fit_config(2), params()))
        await peer.expect_status("training")
        await peer.expect_status("sending")
        result = await peer.expect(FitResult)
        assert result.server_round == 2

    server = await coordinator(script)
    runner = start_runner(server.url)
    original = runner.trainer.fit
    monkeypatch.setattr(runner.trainer, "fit", crash_once)
    await server.finished()
    assert "cannot answer fit of round 1" in caplog.text
