"""One client connection's protocol state: hello first, then results and status."""

from __future__ import annotations

import logging
import re
import time
from collections import Counter

from aiohttp import WSCloseCode, WSMessage, WSMsgType, web

from fednet.buffers import BufferPool
from fednet.exceptions import ProtocolError
from fednet.params import Limits
from fednet.protocol import (
    DEFAULT_DIRECT_UPLOAD_BYTES,
    DEFAULT_PART_BYTES,
    PROTOCOL_VERSION,
    Error,
    EvaluateResult,
    FitResult,
    Hello,
    Message,
    Status,
    UploadRequest,
    Welcome,
    serialize_parts,
)
from fednet.reader import MessageReader
from fednet.server.registry import ClientConn, Registry
from fednet.server.runs import RunManager
from fednet.server.uploads import UploadGate
from fednet.typing import ClientId

logger = logging.getLogger(__name__)


class UploadNotGranted(ProtocolError):
    """A client began a multi-part frame without holding an upload slot."""


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")
CLIENT_STATES = frozenset({"idle", "training", "evaluating", "sending"})


class ClientSession:
    """Turn one socket's frames into registry and run-manager calls.

    Args:
        ws: the prepared WebSocket.
        address: the peer address, for the dashboard and logs.
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
        part_bytes: int = DEFAULT_PART_BYTES,
        direct_upload_bytes: int = DEFAULT_DIRECT_UPLOAD_BYTES,
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
        self.reader = MessageReader(limits, buffers)
        self.conn: ClientConn | None = None

    async def receive(self, frame: WSMessage) -> None:
        """Handle one incoming WebSocket message (possibly one part of several)."""
        if frame.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            return
        self.stats["bytes_received"] += len(frame.data)
        if self.conn is not None:
            self.conn.last_seen = time.time()
            self.conn.bytes_received += len(frame.data)
        try:
            was_joining = self.reader.in_progress
            message = self.reader.feed(frame.data)
            if self.reader.in_progress and not was_joining:
                self._check_grant()
        except UploadNotGranted as e:
            # Its remaining parts would each look malformed: close instead.
            self.stats["rejected:upload_not_granted"] += 1
            await self._refuse("upload_not_granted", str(e))
            return
        except ProtocolError as e:
            self.stats["rejected:protocol_error"] += 1
            logger.warning("malformed frame from %s: %s", self._who(), e)
            if self.conn is not None:
                await self.uploads.finished(self.conn)
            await self._send(Error("protocol_error", str(e)))
            return
        if message is None:
            return
        if self.conn is None:
            await self._hello(message)
            return
        await self._dispatch(self.conn, message)

    def _check_grant(self) -> None:
        """Refuse a multi-part upload that was not granted a slot.

        Joining a large frame costs memory; only granted uploads may, which
        keeps the coordinator's memory bounded even with misbehaving clients.
        """
        if self.conn is None or not self.uploads.holds(self.conn):
            self.reader.reset()
            raise UploadNotGranted("a multi-part frame needs an upload_grant first")

    async def _dispatch(self, conn: ClientConn, message: Message) -> None:
        if isinstance(message, FitResult):
            self.registry.set_status(conn, "idle")
            try:
                await self.runs.update_received(conn, message)
            finally:
                await self.uploads.finished(conn)
                self.buffers.release(message.parameters)
        elif isinstance(message, EvaluateResult):
            self.registry.set_status(conn, "idle")
            self.runs.evaluate_received(conn, message)
        elif isinstance(message, UploadRequest):
            await self.uploads.request(conn, message)
        elif isinstance(message, Status) and message.state in CLIENT_STATES:
            self.registry.set_status(conn, message.state)
        elif isinstance(message, Error):
            logger.warning(
                "client %s reports %s: %s",
                conn.client_id,
                message.code,
                message.message,
            )
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
        if not _NAME.match(message.name) or message.num_examples < 0:
            await self._refuse("invalid_hello", f"invalid client name {message.name!r}")
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
            await old.ws.close(code=WSCloseCode.GOING_AWAY, message=b"replaced")
        now = time.time()
        self.conn = ClientConn(
            client_id, message, self.ws, self.address, now, now, stats=self.stats
        )
        await self._send(
            Welcome(
                client_id,
                self.heartbeat_s,
                part_bytes=self.part_bytes,
                direct_upload_bytes=self.direct_upload_bytes,
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

    async def close(self) -> None:
        """Unregister the client after its socket closed."""
        if self.conn is not None:
            logger.info("client %s left", self.conn.client_id)
            self.registry.remove(self.conn)
            await self.uploads.finished(self.conn)
            self.runs.client_left(self.conn)

    async def _refuse(self, code: str, reason: str) -> None:
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
