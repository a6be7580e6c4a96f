"""One client connection's protocol state: hello first, then results and status."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter

from aiohttp import WSCloseCode, WSMessage, WSMsgType, web

from fednet.buffers import BufferPool
from fednet.exceptions import ProtocolError
from fednet.fields import MAX_EXAMPLES
from fednet.params import Limits
from fednet.protocol import (
    DEFAULT_DIRECT_UPLOAD_BYTES,
    DEFAULT_PART_BYTES,
    MAX_HELLO_CHARS,
    PROTOCOL_VERSION,
    Error,
    EvaluateResult,
    FitResult,
    Hello,
    InitResult,
    Message,
    Status,
    Trainers,
    UploadRequest,
    Welcome,
    serialize_parts,
)
from fednet.reader import MessageReader
from fednet.secagg.wire import SECAGG_INPUTS
from fednet.server.identity import Peer
from fednet.server.registry import ClientConn, Registry, close_socket
from fednet.server.runs import RunManager
from fednet.server.uploads import UploadGate, UploadRefused
from fednet.trainer_messages import TRAINERS_VERSION
from fednet.typing import ClientId

logger = logging.getLogger(__name__)


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")
CLIENT_STATES = frozenset({"idle", "training", "evaluating", "sending"})


class ClientSession:
    """Turn one socket's frames into registry and run-manager calls.

    Args:
        ws: the prepared WebSocket.
        address: the peer address, for the dashboard and logs.
        peer: who the upgrade found the peer to be; it says which names
            the peer may take (None: any).
    """

    def __init__(
        self,
        ws: web.WebSocketResponse,
        address: str,
        *,
        registry: Registry,
        runs: RunManager,
        uploads: UploadGate,
        buffers: BufferPool,
        stats: Counter[str],
        limits: Limits,
        heartbeat_s: float,
        hello_timeout_s: float,
        part_bytes: int = DEFAULT_PART_BYTES,
        direct_upload_bytes: int = DEFAULT_DIRECT_UPLOAD_BYTES,
        peer: Peer | None = None,
    ) -> None:
        self.ws = ws
        self.address = address
        self.registry = registry
        self.runs = runs
        self.uploads = uploads
        self.buffers = buffers
        self.stats = stats
        self.limits = limits
        self.heartbeat_s = heartbeat_s
        self.part_bytes = part_bytes
        self.direct_upload_bytes = direct_upload_bytes
        self.peer = peer
        self.reader = MessageReader(limits, buffers)
        self.conn: ClientConn | None = None
        self.hello_timeout_s = hello_timeout_s
        loop = asyncio.get_running_loop()
        self._hello_timer = loop.call_later(hello_timeout_s, self._hello_overdue)
        self._overdue: asyncio.Task[None] | None = None

    async def receive(self, frame: WSMessage) -> None:
        """Handle one incoming WebSocket message (possibly one part of several)."""
        if frame.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            return
        self.stats["bytes_received"] += len(frame.data)
        conn = self.conn
        if conn is None:
            await self._before_hello(frame.data)
            return
        conn.last_seen = time.time()
        conn.bytes_received += len(frame.data)
        try:
            declared = self.reader.declared_length(frame.data)
            if declared is not None:
                self.uploads.admit(
                    conn, declared, len(frame.data), self.direct_upload_bytes
                )
            message = self.reader.feed(frame.data)
        except UploadRefused as e:
            # Its remaining parts would each look malformed: close instead.
            self.reader.reset()
            await self._refuse(e.code, str(e))
            return
        except ProtocolError as e:
            await self._malformed(e)
            return
        if message is None:
            return
        try:
            await self._dispatch(conn, message)
        finally:
            if frame.type is WSMsgType.BINARY:
                await self.uploads.finished(conn)

    async def _before_hello(self, data: str | bytes) -> None:
        """Take a message before ``hello``: small text only, no binary frame."""
        if not isinstance(data, str):
            await self._refuse("hello_required", "a binary frame before hello")
            return
        if len(data) > MAX_HELLO_CHARS:
            await self._refuse(
                "invalid_hello", f"{len(data)} characters before hello is too long"
            )
            return
        try:
            message = self.reader.feed(data)
        except ProtocolError as e:
            await self._malformed(e)
            return
        if message is not None:
            await self._hello(message)
        if self.conn is not None:
            self._hello_timer.cancel()

    async def _malformed(self, error: ProtocolError) -> None:
        self.stats["rejected:protocol_error"] += 1
        logger.warning("malformed frame from %s: %s", self._who(), error)
        if self.conn is not None:
            await self.uploads.finished(self.conn)
        await self._send(Error("protocol_error", str(error)))

    async def _dispatch(self, conn: ClientConn, message: Message) -> None:
        if isinstance(message, FitResult):
            self.registry.set_status(conn, "idle")
            try:
                await self.runs.update_received(conn, message)
            finally:
                self.buffers.release(message.parameters)
        elif isinstance(message, EvaluateResult):
            self.registry.set_status(conn, "idle")
            self.runs.evaluate_received(conn, message)
        elif isinstance(message, UploadRequest):
            await self._upload_request(conn, message)
        elif isinstance(message, SECAGG_INPUTS):
            self.runs.secagg_received(conn, message)
        elif isinstance(message, Trainers):
            conn.trainers = message.trainers
            self.registry.updated(conn)
            self.runs.client_joined(conn)  # its eligibility for the active run
        elif isinstance(message, InitResult):
            try:
                self.runs.init_received(conn, message)
            finally:
                self.buffers.release(message.parameters)
        elif isinstance(message, Status) and message.state in CLIENT_STATES:
            self.registry.set_status(conn, message.state)
        elif isinstance(message, Error):
            logger.warning(
                "client %s reports %s: %s",
                conn.client_id,
                message.code,
                message.message,
            )
            self.runs.error_received(conn, message)
        else:
            await self._send(Error("unexpected_message", f"unexpected {message.type}"))

    async def _hello(self, message: Message) -> None:
        if not isinstance(message, Hello):
            await self._refuse("hello_required", f"expected hello, got {message.type}")
            return
        if message.protocol_version != PROTOCOL_VERSION:
            await self._refuse(
                "protocol_version",
                f"server speaks protocol {PROTOCOL_VERSION}, "
                f"client {message.protocol_version}",
            )
            return
        if not _NAME.fullmatch(message.name):
            await self._refuse("invalid_hello", f"invalid client name {message.name!r}")
            return
        if not 0 <= message.num_examples <= MAX_EXAMPLES:
            count = f"{message.num_examples} (allowed: 0 to {MAX_EXAMPLES})"
            await self._refuse("invalid_hello", f"invalid num_examples {count}")
            return
        # Before the name-in-use check: an impostor must not close the real site.
        if self.peer is not None and (refusal := self.peer.admit(message.name)):
            await self._refuse(*refusal)
            return
        client_id = ClientId(message.name)
        old = self.registry.get(client_id)
        if old is not None and old.connected:
            if old.hello.instance != message.instance:
                await self._refuse(
                    "name_in_use", f"client name {message.name!r} is connected"
                )
                return
            logger.info("client %s reconnected; closing its old socket", client_id)
            assert old.ws is not None
            # The client is back, so the old socket is dead to it: do not let
            # one that stopped reading hold up the new hello.
            await close_socket(old.ws, WSCloseCode.GOING_AWAY, b"replaced", 1.0)
        now = time.time()
        self.conn = ClientConn(
            client_id, message, self.ws, self.address, now, now, stats=self.stats
        )
        self.conn.site = None if self.peer is None else self.peer.site
        await self._send(
            Welcome(
                client_id,
                self.heartbeat_s,
                part_bytes=self.part_bytes,
                direct_upload_bytes=self.direct_upload_bytes,
                protocol_version=TRAINERS_VERSION,
            )
        )
        self.registry.add(self.conn)
        self.runs.client_joined(self.conn)
        logger.info(
            "client %s joined from %s with %d examples of %s",
            client_id,
            self.address,
            message.num_examples,
            message.task,
        )

    async def _upload_request(self, conn: ClientConn, message: UploadRequest) -> None:
        """Queue a request for an upload slot if the run awaits such a result."""
        run_id, server_round = message.run_id, message.server_round
        allowance = self.runs.upload_allowance(conn, run_id, server_round)
        if allowance is not None and 0 < message.nbytes <= allowance:
            await self.uploads.request(conn, message)
            return
        if allowance is None:
            reason = f"run {run_id} round {server_round} awaits no result from you"
        else:
            reason = f"{message.nbytes} bytes requested, at most {allowance} expected"
        self.stats["rejected:upload_refused"] += 1
        logger.warning("refused an upload of %s: %s", conn.client_id, reason)
        await self._send(Error("upload_refused", reason, run_id, server_round))

    def _hello_overdue(self) -> None:
        if self.conn is None and not self.ws.closed:
            reason = f"no hello within {self.hello_timeout_s:g} s"
            self._overdue = asyncio.ensure_future(self._refuse("hello_timeout", reason))

    async def close(self) -> None:
        """Unregister the client after its socket closed."""
        self._hello_timer.cancel()
        if self.conn is not None:
            logger.info("client %s left", self.conn.client_id)
            self.registry.remove(self.conn)
            await self.uploads.finished(self.conn)
            self.runs.client_left(self.conn)

    async def _refuse(self, code: str, reason: str) -> None:
        self.stats[f"rejected:{code}"] += 1
        logger.warning("refused %s: %s", self.address, reason)
        await self._send(Error(code, reason))
        await self.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=code.encode())

    async def _send(self, message: Message) -> None:
        if self.conn is not None:
            await self.conn.send(serialize_parts(message))
        elif not self.ws.closed:
            for part in serialize_parts(message):
                assert isinstance(part, str)
                await self.ws.send_str(part)

    def _who(self) -> str:
        return self.conn.client_id if self.conn is not None else self.address
