"""The client's reconnect loop: dial, serve one connection, back off, dial again."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import ssl
import uuid
from typing import Any

import aiohttp

from fednet import __version__
from fednet.buffers import BufferPool
from fednet.client.connection import Connection
from fednet.client.state import ClientState
from fednet.client.trainer import Trainer
from fednet.settings import ClientSettings
from fednet.exceptions import DataError, ProtocolError
from fednet.params import Limits
from fednet.protocol import MAX_HELLO_CHARS, Hello, serialize
from fednet.tlsctx import client_ssl_context, tls_failure
from fednet.gossip import CLIENT_CAPABILITIES, SIGNED
from fednet.client.signedsite import secagg_policy

__all__ = ["ClientRunner", "ClientState", "backoff_delay"]

logger = logging.getLogger(__name__)

# What a lost or refused connection raises; anything else is a bug and ends run().
_RETRIED = (aiohttp.ClientError, OSError, ProtocolError, asyncio.TimeoutError)


def backoff_delay(
    attempt: int, initial: float, maximum: float, rng: random.Random
) -> float:
    """Return the wait before reconnect ``attempt`` (full jitter, capped)."""
    return rng.uniform(0, min(maximum, initial * 2**attempt))


class ClientRunner:
    """Keep one client connected to the coordinator and answer its requests.

    Each socket gets a fresh :class:`~fednet.client.connection.Connection`;
    the runner only dials, counts failures and backs off between attempts.

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
        self._send_stats = True  # until check_hello finds them too long
        self._send_histograms = True  # what check_hello leaves out first
        self.state = ClientState()
        self._limits = Limits(max_total_bytes=settings.max_message_bytes)
        # Outlives connections: the joined-frame buffers are worth reusing.
        self._buffers = BufferPool(max_free=2)
        self._ssl: ssl.SSLContext | bool = True
        if settings.server.startswith("wss://"):
            self._ssl = client_ssl_context(
                settings.ca_file, settings.tls_cert, settings.tls_key
            )
        elif settings.ca_file or settings.tls_cert:
            logger.warning(
                "no TLS: %s is not a wss:// URL, --ca-file and --tls-cert are unused"
                " for the connection", settings.server,
            )
        self.policy = secagg_policy(settings)

    async def run(self) -> None:
        """Connect, serve, and reconnect with backoff until retries run out.

        Raises:
            DataError: before dialling, if the hello is too large for the
                coordinator (see :meth:`check_hello`); retrying cannot help.
            ConnectionError: once ``settings.max_retries`` reconnects in a row
                have failed.
        """
        self.check_hello()
        attempt = 0
        async with aiohttp.ClientSession(headers=self._headers()) as http:
            while True:
                try:
                    await self._connect(http)
                    attempt = 0
                except _RETRIED as e:
                    self.state.last_error = self._describe(e)
                    logger.warning(
                        "connection to %s failed: %s",
                        self.settings.server,
                        self.state.last_error,
                    )
                # A refusal stays on the status page until the next attempt.
                if self.state.state != "refused":
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

    def _describe(self, error: BaseException) -> str:
        """Return why a connection failed, naming a TLS cause and its fix."""
        early = isinstance(error, aiohttp.ServerDisconnectedError)
        early = early and self.state.state == "connecting"
        tls = None
        if self._ssl is not True:
            tls = tls_failure(error, self.settings.tls_cert is not None, early)
        return tls or str(error) or type(error).__name__

    def _headers(self) -> dict[str, str]:
        """Return the upgrade request's headers: the site's credential if it has
        one, else the shared join token, if any."""
        token = self.settings.site_token or self.settings.join_token
        if not token:
            return {}
        return {"Authorization": f"Bearer {token}"}

    async def _connect(self, http: aiohttp.ClientSession) -> None:
        """Open one socket, say hello and serve it until it closes."""
        self.state.state = "connecting"
        try:
            dialled = await http.ws_connect(
                self.settings.server,
                heartbeat=self.settings.heartbeat_s,
                max_msg_size=self.settings.max_message_bytes,
                ssl=self._ssl,
            )
        except aiohttp.WSServerHandshakeError as e:
            if e.status != 401:
                raise
            self.state.state = "refused"
            raise ConnectionError(f"refused by the server (HTTP 401): {self._why(e)}")
        async with dialled as ws:
            connection = await Connection.open(
                ws,
                self._hello(),
                self.trainer,
                self.state,
                self._limits,
                self._buffers,
                self.policy,
            )
            logger.info(
                "joined %s as %s", self.settings.server, connection.welcome.client_id
            )
            await connection.serve()

    def _why(self, error: aiohttp.WSServerHandshakeError) -> str:
        """Return the reason of a refused upgrade (the server's, if it gave one)."""
        headers = error.headers
        challenge = headers.get("WWW-Authenticate", "") if headers else ""
        match = re.search(r'error_description="([^"]{1,300})"', challenge)
        if match:
            return match[1]
        if self.settings.site_token or self.settings.join_token:
            return "the coordinator did not accept this client's credential"
        return "this coordinator needs a site credential (--site-token)"

    def check_hello(self) -> None:
        """Refuse a hello the coordinator cannot read, before dialling at all.

        A CSV site's histograms, then its whole feature statistics, are left
        out (with a warning) when they would make the hello too long: a run
        then imputes the mean instead of the median, or cannot count them.

        Raises:
            DataError: if the hello, without statistics, is longer than the
                coordinator reads before a hello (``MAX_HELLO_CHARS``), as
                with a CSV file of very many or very long column names.
        """
        size = len(serialize(self._hello()))
        if size > MAX_HELLO_CHARS and "histograms" in (self.trainer.stats or {}):
            self._send_histograms = False
            logger.warning(
                "histograms left out of the hello (%d characters with them, the"
                " limit is %d): median imputation takes the mean of this"
                " site's columns", size, MAX_HELLO_CHARS,
            )
            size = len(serialize(self._hello()))
        if size > MAX_HELLO_CHARS and self._send_stats and self.trainer.stats:
            self._send_stats = False
            logger.warning(
                "feature statistics left out of the hello (%d characters with"
                " them, the limit is %d): runs will not count this site's",
                size, MAX_HELLO_CHARS,
            )
            size = len(serialize(self._hello()))
        if size <= MAX_HELLO_CHARS:
            return
        schema = self.trainer.schema
        features, classes = (
            (len(schema.feature_names), len(schema.classes)) if schema else (0, 0)
        )
        raise DataError(
            f"the data's {features} feature columns and {classes} classes make a"
            f" hello of {size} characters, over the coordinator's limit of"
            f" {MAX_HELLO_CHARS}: use fewer or shorter column names"
        )

    def _hello(self) -> Hello:
        """Return this client's hello: who it is and what data it holds."""
        schema = self.trainer.schema
        return Hello(
            name=self.settings.name,
            instance=self.instance,
            num_examples=self.trainer.num_examples,
            task=self.trainer.task,
            schema=schema.to_dict() if schema is not None else None,
            client_version=__version__,
            stats=self._stats(),
            capabilities=CLIENT_CAPABILITIES + (
                (SIGNED,) if self.policy.identity is not None else ()
            ),
        )

    def _stats(self) -> dict[str, Any] | None:
        """Return the feature statistics the hello carries (those that fit)."""
        stats = self.trainer.stats if self._send_stats else None
        if stats is not None and not self._send_histograms:
            stats = {k: v for k, v in stats.items() if k != "histograms"}
        return stats
