"""The coordinator's aiohttp application factory."""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import WSCloseCode, web
from aiohttp.http_exceptions import HttpProcessingError

from fednet.buffers import BufferPool
from fednet.config import MODE_FIELDS, STRATEGY_FIELDS
from fednet.settings import ServerSettings
from fednet.server.api import MAX_BODY_BYTES
from fednet.server.auth import setup_auth
from fednet.server.events import EventHub
from fednet.server.identity import revocation_ctx
from fednet.server.audit import AuditLog, flushing
from fednet.server.keys import (
    AUDIT,
    BUFFERS,
    CLIENT_SOCKETS,
    EVENTS,
    REGISTRY,
    RUNS,
    SETTINGS,
    SITES,
    SOCKETS,
    STARTED,
    STATS,
    STORE,
    UPLOADS,
)
from fednet.server.metrics import setup_metrics
from fednet.server.registry import Registry, close_socket
from fednet.server.routes import setup_routes
from fednet.server.runs import RunManager
from fednet.server.sites import SiteBook
from fednet.server.store import Store
from fednet.server.uploads import UploadGate

logger = logging.getLogger(__name__)


def default_web_dir() -> Path:
    """Return the folder of the dashboard's templates and static files.

    ``web/`` ships inside the wheel as the ``fednet.web`` package data.
    """
    return Path(str(resources.files("fednet.web")))


def create_app(settings: ServerSettings) -> web.Application:
    """Build the coordinator: client WebSocket, JSON API, dashboard, state.

    Args:
        settings: validated server settings.
    """
    app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        handler_args={"logger": HttpLog(logging.getLogger("aiohttp.server"))},
    )
    app[SETTINGS] = settings
    app[EVENTS] = EventHub()
    app[STATS] = Counter()
    app[STARTED] = time.time()
    app[SOCKETS] = weakref.WeakSet()
    app[CLIENT_SOCKETS] = set()
    app[UPLOADS] = UploadGate()
    # Joined upload frames: one buffer per upload slot, plus one arriving.
    app[BUFFERS] = BufferPool(max_free=app[UPLOADS].slots + 1)
    web_dir = settings.web_dir or default_web_dir()
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(web_dir / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
    )
    # The launch form shows a strategy's own fields only (dashboard.html).
    aiohttp_jinja2.get_env(app).globals["strategy_fields"] = STRATEGY_FIELDS
    aiohttp_jinja2.get_env(app).globals["mode_fields"] = MODE_FIELDS
    setup_auth(app)
    setup_routes(app, web_dir / "static")
    app.cleanup_ctx.append(_state_ctx)
    app.cleanup_ctx.append(revocation_ctx)
    setup_metrics(app)
    app.on_shutdown.append(_stop_runs)
    app.on_shutdown.append(_close_sockets)
    return app


class HttpLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server log, with a request it could not parse on one line.

    aiohttp answers a malformed request (a NUL byte in a header, a line too
    long, a bad chunk) 400, but logs it with a traceback, as it logs a crashed
    handler. A peer's bad bytes are no bug of ours: one warning line says so.
    """

    def exception(
        self,
        msg: object,
        *args: object,
        exc_info: Any = True,
        stack_info: bool = False,
        stacklevel: int = 1,
        extra: Mapping[str, object] | None = None,
        **kwargs: object,
    ) -> None:
        """Log a refused request as one warning, anything else with its traceback."""
        if isinstance(exc_info, HttpProcessingError) and exc_info.code < 500:
            text = " ".join(str(exc_info.message).split())
            self.warning("refused a malformed request: %.300s", text)
            return
        super().exception(
            msg,
            *args,
            exc_info=exc_info,
            stack_info=stack_info,
            stacklevel=stacklevel,
            extra=extra,
            **kwargs,
        )


async def _state_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = Store(settings.state_dir)
    app[STORE] = store
    app[AUDIT] = AuditLog(store)
    app[SITES] = SiteBook(store)
    app[REGISTRY] = Registry(app[EVENTS], send_timeout_s=settings.send_timeout_s)
    app[REGISTRY].test_swap_key = settings.test_secagg_swap_key  # TEST ONLY
    app[RUNS] = RunManager(store, app[REGISTRY], app[EVENTS], app[STATS])
    if settings.resume:
        app[RUNS].resume_unfinished()
    async with flushing(app[AUDIT]):
        yield
    await app[RUNS].close()
    store.close()


async def _stop_runs(app: web.Application) -> None:
    """Stop driving before the sockets close: clients leaving must not end the run."""
    await app[RUNS].close()


async def _close_sockets(app: web.Application) -> None:
    """Close every socket; one whose peer takes nothing is dropped after a while."""
    sockets: weakref.WeakSet[web.WebSocketResponse] = app[SOCKETS]
    code, timeout_s = WSCloseCode.GOING_AWAY, app[SETTINGS].send_timeout_s
    await asyncio.gather(
        *(close_socket(ws, code, b"server shutdown", timeout_s) for ws in list(sockets))
    )
