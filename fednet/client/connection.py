"""One WebSocket connection to the coordinator: handshake, requests, keepalive."""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp

from fednet.buffers import BufferPool
from fednet.client import work
from fednet.client.secure import SECURE_STEPS, SecureSite, exit_now
from fednet.client.signedsite import SecaggPolicy
from fednet.client.state import ClientState
from fednet.client.trainer import Trainer
from fednet.client.sitetrainers import direct_only, error_code
from fednet.exceptions import FednetError, ProtocolError
from fednet.params import Limits
from fednet.protocol import (
    Error,
    Evaluate,
    EvaluateResult,
    Fit,
    FitResult,
    Hello,
    InitRequest,
    InitResult,
    Message,
    Status,
    UploadGrant,
    UploadRequest,
    Welcome,
    serialize_parts,
)
from fednet.gossip import average_relay
from fednet.client.handshake import handshake, text_frame
from fednet.reader import MessageReader
from fednet.secagg.wire import SecaggSetup, SecaggShares
from fednet.typing import Metrics, NDArrays

logger = logging.getLogger(__name__)

_DATA_FRAMES = (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY)


class Connection:
    """Serve the coordinator over one WebSocket connection, and end with it.

    Everything that belongs to one socket lives here and dies with it: the
    welcome, the reader of multi-part frames, upload grants, the work queue,
    the send lock and the status the keepalive repeats. Build one with
    :meth:`open`, which does the handshake, then call :meth:`serve`.

    Args:
        ws: the open socket.
        welcome: the coordinator's answer to this socket's hello.
        trainer: local training on this client's data.
        state: the client's status page data, updated as work goes on.
        limits: bounds on the binary frames the coordinator sends.
        buffers: reuses the buffers multi-part frames are joined in.
        policy: whether secure rounds are signed and verified here.
    """

    def __init__(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        welcome: Welcome,
        trainer: Trainer,
        state: ClientState,
        limits: Limits,
        buffers: BufferPool,
        policy: SecaggPolicy = SecaggPolicy(),
    ) -> None:
        self.welcome = welcome
        self._ws = ws
        self._trainer = trainer
        self._state = state
        self._buffers = buffers
        self._reader = MessageReader(limits, buffers)
        self._grants = work.UploadGrants()
        self._send_lock = asyncio.Lock()
        self._work = work.WorkQueue(buffers)
        self._wire_state = "idle"
        loop = asyncio.get_running_loop()

        def release(arrays: NDArrays) -> None:  # from the thread that encodes
            loop.call_soon_threadsafe(buffers.release, arrays)

        self._secure = SecureSite(welcome.client_id, policy=policy, release=release)

    @classmethod
    async def open(
        cls,
        ws: aiohttp.ClientWebSocketResponse,
        hello: Hello,
        trainer: Trainer,
        state: ClientState,
        limits: Limits,
        buffers: BufferPool,
        policy: SecaggPolicy = SecaggPolicy(),
    ) -> Connection:
        """Say hello on a fresh socket and return the connection it welcomes.

        Args:
            ws: the socket, just opened.
            hello: who this client is.
            trainer, state, limits, buffers, policy: as for :class:`Connection`.

        Returns:
            The connection, its client id recorded in ``state``.

        Raises:
            ConnectionError: if the coordinator refuses (``state`` then says
                "refused") or closes before its welcome.
            ProtocolError: if the answer is malformed or not a welcome.
            asyncio.TimeoutError: if no answer comes within ``WELCOME_TIMEOUT_S``.
        """
        welcome = await handshake(ws, hello, trainer, state, limits)
        return cls(ws, welcome, trainer, state, limits, buffers, policy)

    async def serve(self) -> None:
        """Answer requests until the coordinator closes; then end every task."""
        tasks = [
            asyncio.create_task(self._run_worker()),
            asyncio.create_task(self._keep_alive()),
        ]
        try:
            async for frame in self._ws:
                if frame.type in _DATA_FRAMES:
                    self._dispatch(frame.data)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        logger.warning("server closed the connection (code %s)", self._ws.close_code)

    def _dispatch(self, data: str | bytes) -> None:
        """Feed one WebSocket message to the reader and act on what it completes."""
        try:
            message = self._reader.feed(data)
        except ProtocolError as e:
            logger.warning("malformed frame from the server: %s", e)
            return
        if isinstance(message, (Fit, Evaluate, InitRequest, *SECURE_STEPS)):
            self._work.put(message)
        elif isinstance(message, SecaggSetup):
            self._secure.setup(message)
        elif isinstance(message, UploadGrant):
            self._grants.grant((message.run_id, message.server_round))
        elif isinstance(message, Error):
            self._state.last_error = f"{message.code}: {message.message}"
            logger.warning("server says %s: %s", message.code, message.message)
            if message.code == "upload_refused" and message.server_round is not None:
                self._grants.refuse((message.run_id or 0, message.server_round))

    async def _run_worker(self) -> None:
        """Answer queued requests one at a time, in the order they came."""
        while True:
            request = await self._work.get()
            reply: Message | None = None
            try:
                reply = await self._answer(request)
                # Not after a secure round's fit: the round keeps the model.
                if isinstance(request, Evaluate) or (
                    isinstance(request, Fit) and isinstance(reply, FitResult)
                ):
                    self._buffers.release(request.parameters)
                parts = await work.reply_parts(reply, self.welcome.part_bytes)
            except Exception as e:  # noqa: BLE001 - a trainer bug must not mute us
                logger.error(
                    "cannot answer %s of round %d: %s",
                    request.type,
                    request.server_round,
                    e,
                    exc_info=not isinstance(e, (FednetError, ValueError)),
                )
                error = Error(
                    error_code(e), str(e), request.run_id, request.server_round
                )
                parts = serialize_parts(error)
            nbytes = sum(len(p) for p in parts)
            if isinstance(reply, InitResult):
                parts = direct_only(parts, nbytes, reply.run_id, self.welcome)
            # The coordinator joins multi-part frames only for granted uploads.
            if isinstance(reply, FitResult) and (
                len(parts) > 1 or nbytes > self.welcome.direct_upload_bytes
            ):
                if not await self._wait_for_grant(reply, nbytes):
                    parts = []
            await self._send(parts)
            del parts, reply
            if self._state.exit_after_masked and isinstance(request, SecaggShares):
                exit_now(request.server_round)
            await self._send_status("idle")

    async def _answer(self, request: work.Request) -> Message:
        """Run the request on the trainer, telling the coordinator what it does."""
        if isinstance(request, Fit):
            return self._secure.after_fit(request, await self._fit(request))
        if isinstance(request, Evaluate):
            return await self._evaluate(request)
        if isinstance(request, InitRequest):
            config = request.config
            arch, params = await asyncio.to_thread(self._trainer.initial, config)
            return InitResult(request.run_id, arch, params)
        return await asyncio.to_thread(self._secure.step, request)

    async def _fit(self, request: Fit) -> FitResult:
        """Train on the local data in a worker thread and record the round."""
        await self._send_status("training")
        started = time.monotonic()
        params, num_examples, metrics = await asyncio.to_thread(
            _fit_request, self._trainer, request
        )
        self._state.rounds_trained += 1
        self._state.last_round = {
            "run_id": request.run_id,
            "server_round": request.server_round,
            "num_examples": num_examples,
            "train_s": round(time.monotonic() - started, 3),
            **metrics,
        }
        logger.info("fit: round %d trained on %d examples %s",
                    request.server_round, num_examples, metrics)
        await self._send_status("sending")
        return FitResult(
            request.run_id, request.server_round, num_examples, metrics, params
        )

    async def _evaluate(self, request: Evaluate) -> EvaluateResult:
        """Evaluate in a worker thread; add the metrics to the round just trained."""
        await self._send_status("evaluating")
        loss, num_examples, metrics = await asyncio.to_thread(
            self._trainer.evaluate, request.parameters, request.config
        )
        last = self._state.last_round
        if last and last.get("server_round") == request.server_round:
            named = {k: v for k, v in metrics.items() if not k.startswith("_")}
            last.update({f"val_{k}": v for k, v in named.items()}, val_loss=loss)
        return EvaluateResult(
            request.run_id, request.server_round, num_examples, loss, metrics
        )

    async def _wait_for_grant(self, reply: FitResult, nbytes: int) -> bool:
        """Ask for an upload slot; return whether it was granted in time.

        Past ``work.GRANT_WAIT_S`` the result is given up: nothing more is sent
        for it and the client goes idle, ready for the next request.
        """
        key = (reply.run_id, reply.server_round)
        self._grants.expect(key)
        request = UploadRequest(reply.run_id, reply.server_round, nbytes)
        await self._send([text_frame(request)])
        if await self._grants.wait(key):
            return True
        logger.warning(
            "no upload grant for round %d (refused, or none within %.0f s):"
            " result given up",
            reply.server_round,
            work.GRANT_WAIT_S,
            extra={"server_round": reply.server_round},
        )
        return False

    async def _send_status(self, state: str) -> None:
        """Show ``state`` on the status page and tell the coordinator."""
        self._state.state = state if state != "idle" else "connected"
        self._wire_state = state
        await self._send([text_frame(Status(state))])

    async def _send(self, parts: list[str | bytes | memoryview]) -> None:
        """Send one message's parts together: nothing may come between them."""
        async with self._send_lock:
            for part in parts:
                if self._ws.closed:
                    return
                if isinstance(part, str):
                    await self._ws.send_str(part)
                else:
                    await self._ws.send_bytes(part)  # type: ignore[arg-type]

    async def _keep_alive(self) -> None:
        """Repeat the current status every heartbeat, so "last seen" stays fresh.

        WebSocket pings prove the connection alive but never reach the
        coordinator's application; this small message does, even while the
        client trains for minutes.
        """
        while not self._ws.closed:
            await asyncio.sleep(self.welcome.heartbeat_s)
            await self._send([text_frame(Status(self._wire_state))])


def _fit_request(trainer: Trainer, request: Fit) -> tuple[NDArrays, int, Metrics]:
    """Train on the request's model: in a gossip step, the mean of its models."""
    params, peers = request.parameters, request.config.peer_models
    return trainer.fit(average_relay(params, peers) if peers else params,
                       request.config)
