"""The client's connection loop: dial, hello, train on request, reconnect forever."""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from fednet import __version__
from fednet.client.trainer import Trainer
from fednet.config import ClientSettings
from fednet.exceptions import FednetError, ProtocolError
from fednet.params import BufferPool, Limits
from fednet.protocol import (
    Error,
    Evaluate,
    EvaluateResult,
    Fit,
    FitResult,
    Hello,
    Message,
    MessageReader,
    Status,
    UploadGrant,
    UploadRequest,
    Welcome,
    parse,
    serialize_parts,
)

logger = logging.getLogger(__name__)


@dataclass
class ClientState:
    """What the status page shows about this client."""

    state: str = "starting"
    client_id: str | None = None
    connected_since: float | None = None
    connects: int = 0
    last_error: str | None = None
    last_round: dict[str, Any] | None = None
    rounds_trained: int = 0
    started: float = field(default_factory=time.time)


def backoff_delay(
    attempt: int, initial: float, maximum: float, rng: random.Random
) -> float:
    """Return the wait before reconnect ``attempt`` (full jitter, capped)."""
    return rng.uniform(0, min(maximum, initial * 2**attempt))


class ClientRunner:
    """Keep one client connected to the coordinator and answer its requests.

    Args:
        settings: validated client settings.
        trainer: local training on this client's data.
        rng: randomness for reconnect jitter.
    """

    def __init__(
        self, settings: ClientSettings, trainer: Trainer, rng: random.Random
    ) -> None:
        self.settings = settings
        self.trainer = trainer
        self.rng = rng
        self.instance = uuid.uuid4().hex
        self.state = ClientState()
        self._limits = Limits(max_total_bytes=settings.max_message_bytes)
        self._buffers = BufferPool(max_free=2)

    async def run(self) -> None:
        """Connect, serve, and reconnect with backoff until retries run out."""
        attempt = 0
        headers = {}
        if self.settings.join_token:
            headers["Authorization"] = f"Bearer {self.settings.join_token}"
        async with aiohttp.ClientSession(headers=headers) as http:
            while True:
                try:
                    await self._session(http)
                    attempt = 0
                except (
                    aiohttp.ClientError,
                    OSError,
                    ProtocolError,
                    asyncio.TimeoutError,
                ) as e:
                    self.state.last_error = str(e) or type(e).__name__
                    logger.warning(
                        "connection to %s failed: %s",
                        self.settings.server,
                        self.state.last_error,
                    )
                self.state.state = "disconnected"
                self.state.connected_since = None
                if (
                    self.settings.max_retries is not None
                    and attempt >= self.settings.max_retries
                ):
                    raise ConnectionError(f"gave up after {attempt} retries")
                delay = backoff_delay(
                    attempt,
                    self.settings.backoff_initial_s,
                    self.settings.backoff_max_s,
                    self.rng,
                )
                attempt += 1
                logger.info("reconnecting in %.1f s (attempt %d)", delay, attempt)
                await asyncio.sleep(delay)

    async def _session(self, http: aiohttp.ClientSession) -> None:
        self.state.state = "connecting"
        async with http.ws_connect(
            self.settings.server,
            heartbeat=self.settings.heartbeat_s,
            max_msg_size=self.settings.max_message_bytes,
        ) as ws:
            await ws.send_str(self._hello())
            welcome = await self._welcome(ws)
            self._welcome_msg = welcome
            self._grants: dict[tuple[int, int], asyncio.Event] = {}
            self._reader = MessageReader(self._limits, self._buffers)
            self._send_lock = asyncio.Lock()
            self.state.client_id = welcome.client_id
            self.state.state, self.state.connects = "connected", self.state.connects + 1
            self.state.connected_since = time.time()
            logger.info("joined %s as %s", self.settings.server, welcome.client_id)
            work: asyncio.Queue[Fit | Evaluate] = asyncio.Queue()
            worker = asyncio.create_task(self._work(ws, work))
            keepalive = asyncio.create_task(self._keepalive(ws, welcome.heartbeat_s))
            try:
                async for frame in ws:
                    if frame.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                        await self._receive(frame.data, work)
            finally:
                worker.cancel()
                keepalive.cancel()
                await asyncio.gather(worker, keepalive, return_exceptions=True)
            logger.warning("server closed the connection (code %s)", ws.close_code)

    def _hello(self) -> str:
        schema = self.trainer.schema
        hello = Hello(
            name=self.settings.name,
            instance=self.instance,
            num_examples=self.trainer.num_examples,
            task=self.trainer.task,
            schema=schema.to_dict() if schema is not None else None,
            client_version=__version__,
        )
        return _text(hello)

    async def _welcome(self, ws: aiohttp.ClientWebSocketResponse) -> Welcome:
        frame = await ws.receive(timeout=30)
        if frame.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            raise ConnectionError(f"closed before welcome (code {ws.close_code})")
        message = parse(frame.data, self._limits)
        if isinstance(message, Error):
            self.state.state = "refused"
            raise ConnectionError(f"refused by the server: {message.message}")
        if not isinstance(message, Welcome):
            raise ProtocolError(f"expected welcome, got {message.type}")
        return message

    async def _receive(
        self, data: str | bytes, work: asyncio.Queue[Fit | Evaluate]
    ) -> None:
        try:
            message = self._reader.feed(data)
        except ProtocolError as e:
            logger.warning("malformed frame from the server: %s", e)
            return
        if isinstance(message, (Fit, Evaluate)):
            work.put_nowait(message)
        elif isinstance(message, UploadGrant):
            key = (message.run_id, message.server_round)
            self._grants.setdefault(key, asyncio.Event()).set()
        elif isinstance(message, Error):
            self.state.last_error = f"{message.code}: {message.message}"
            logger.warning("server says %s: %s", message.code, message.message)

    async def _work(
        self, ws: aiohttp.ClientWebSocketResponse, work: asyncio.Queue[Fit | Evaluate]
    ) -> None:
        part_bytes = self._welcome_msg.part_bytes
        while True:
            request = await work.get()
            reply: Message | None = None
            try:
                reply = await self._answer(ws, request)
                self._buffers.release(request.parameters)
                parts = await asyncio.to_thread(serialize_parts, reply, part_bytes)
            except (FednetError, ValueError) as e:
                logger.error(
                    "cannot answer %s of round %d: %s",
                    request.type,
                    request.server_round,
                    e,
                )
                error = Error(
                    "client_error", str(e), request.run_id, request.server_round
                )
                parts = serialize_parts(error)
            nbytes = sum(len(p) for p in parts)
            # The coordinator joins multi-part frames only for granted uploads.
            if isinstance(reply, FitResult) and (
                len(parts) > 1 or nbytes > self._welcome_msg.direct_upload_bytes
            ):
                await self._wait_for_grant(ws, reply, nbytes)
            await self._send(ws, parts)
            del parts, reply
            await self._status(ws, "idle")

    async def _wait_for_grant(
        self, ws: aiohttp.ClientWebSocketResponse, reply: FitResult, nbytes: int
    ) -> None:
        key = (reply.run_id, reply.server_round)
        granted = self._grants.setdefault(key, asyncio.Event())
        request = UploadRequest(reply.run_id, reply.server_round, nbytes)
        await self._send(ws, [_text(request)])
        await granted.wait()
        self._grants.pop(key, None)

    async def _answer(
        self, ws: aiohttp.ClientWebSocketResponse, request: Fit | Evaluate
    ) -> Message:
        if isinstance(request, Fit):
            await self._status(ws, "training")
            started = time.monotonic()
            params, num_examples, metrics = await asyncio.to_thread(
                self.trainer.fit, request.parameters, request.config
            )
            self.state.rounds_trained += 1
            self.state.last_round = {
                "run_id": request.run_id,
                "server_round": request.server_round,
                "num_examples": num_examples,
                "train_s": round(time.monotonic() - started, 3),
                **metrics,
            }
            logger.info(
                "fit: round %d trained on %d examples %s",
                request.server_round,
                num_examples,
                metrics,
            )
            await self._status(ws, "sending")
            return FitResult(
                request.run_id, request.server_round, num_examples, metrics, params
            )
        await self._status(ws, "evaluating")
        loss, num_examples, metrics = await asyncio.to_thread(
            self.trainer.evaluate, request.parameters, request.config
        )
        if (
            self.state.last_round
            and self.state.last_round.get("server_round") == request.server_round
        ):
            self.state.last_round.update(
                val_loss=loss, **{f"val_{k}": v for k, v in metrics.items()}
            )
        return EvaluateResult(
            request.run_id, request.server_round, num_examples, loss, metrics
        )

    async def _status(self, ws: aiohttp.ClientWebSocketResponse, state: str) -> None:
        self.state.state = state if state != "idle" else "connected"
        self._wire_state = state
        await self._send(ws, [_text(Status(state))])

    async def _send(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        parts: list[str | bytes | memoryview],
    ) -> None:
        """Send one message's parts together: nothing may come between them."""
        async with self._send_lock:
            for part in parts:
                if ws.closed:
                    return
                if isinstance(part, str):
                    await ws.send_str(part)
                else:
                    await ws.send_bytes(part)  # type: ignore[arg-type]

    async def _keepalive(
        self, ws: aiohttp.ClientWebSocketResponse, interval_s: float
    ) -> None:
        """Repeat the current status every heartbeat, so "last seen" stays fresh.

        WebSocket pings prove the connection alive but never reach the
        coordinator's application; this small message does, even while the
        client trains for minutes.
        """
        self._wire_state = "idle"
        while not ws.closed:
            await asyncio.sleep(interval_s)
            await self._send(ws, [_text(Status(self._wire_state))])


def _text(message: Message) -> str:
    (frame,) = serialize_parts(message)
    assert isinstance(frame, str)
    return frame
