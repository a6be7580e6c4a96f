"""JSON API handlers: status, clients, runs, launch, stop, model download."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from typing import Any

from aiohttp import web

from fednet import __version__
from fednet.config import RunConfig
from fednet.exceptions import ConfigError
from fednet.fields import parse_int64
from fednet.protocol import PROTOCOL_VERSION
from fednet.server import access
from fednet.server.dashboard import strict_dumps
from fednet.server.keys import (
    AUDIT,
    REGISTRY,
    RUNS,
    SETTINGS,
    SITES,
    STARTED,
    STATS,
    STORE,
)
from fednet.server.runs import RunConflict
from fednet.server.sites import client_auth_mode
from fednet.server.warmstart import load_warm_start
from fednet.views import ProgressView, RunView

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20  # the largest request body the app reads

# Every JSON answer is strict JSON: NaN and infinities go out as null.
json_response = functools.partial(web.json_response, dumps=strict_dumps)


def _json_error(
    status: type[web.HTTPException], message: str, **extra: Any
) -> web.HTTPException:
    body = strict_dumps({"error": message, **extra})
    return status(text=body, content_type="application/json")


async def require_admin(request: web.Request) -> None:
    """Guard a write: same origin, a JSON body and an admin (see ``access``)."""
    await access.require_admin(request)


def _actor(request: web.Request) -> str:
    """Return the audit log's actor of a request: its role."""
    return access.request_role(request)


def _run_id(request: web.Request) -> int:
    """Return the run id of the URL; 404 if it is not an integer in int64."""
    run_id = parse_int64(request.match_info["run_id"])
    if run_id is None:
        raise _json_error(web.HTTPNotFound, "no such run")
    return run_id


async def healthz(request: web.Request) -> web.Response:
    """Answer load balancers' liveness checks."""
    return web.Response(text="ok\n")


async def status(request: web.Request) -> web.Response:
    """Return the server's state, its clients count and the active run's progress."""
    app = request.app
    runs = app[RUNS]
    return json_response(
        {
            "version": __version__,
            "protocol_version": PROTOCOL_VERSION,
            "uptime_s": time.time() - app[STARTED],
            "clients_connected": len(app[REGISTRY].connected()),
            "active_run": _progress_dict(runs.progress()),
            "join_token_required": app[SETTINGS].join_token is not None,
            "admin_token_required": app[SETTINGS].admin_token is not None,
            "client_auth": client_auth_mode(app[SETTINGS], app[SITES]),
            "stats": {k: v for k, v in app[STATS].items()},
        }
    )


async def list_clients(request: web.Request) -> web.Response:
    """Return every known client, connected first (site details for admins)."""
    clients = [c.to_dict() for c in request.app[REGISTRY].all()]
    if not access.sees_site_details(request):
        clients = [access.without_site_details(c) for c in clients]
    return json_response(clients)


async def list_runs(request: web.Request) -> web.Response:
    """Return the newest runs first."""
    return json_response([r.to_dict() for r in request.app[STORE].list_runs()])


async def get_run(request: web.Request) -> web.Response:
    """Return one run with its config, status, error and per-round history."""
    run = request.app[STORE].get_run(_run_id(request))
    if run is None:
        raise _json_error(web.HTTPNotFound, "no such run")
    return json_response(run_with_progress(run, request.app[RUNS].progress()))


async def launch_run(request: web.Request) -> web.Response:
    """Validate a RunConfig and start it: 201, 400 per field, or 409."""
    await require_admin(request)
    body = await _read_json(request)
    try:
        config = RunConfig.from_dict(body)
        if config.warm_start:  # refused now, with the reason, not as a failed run
            await asyncio.to_thread(load_warm_start, request.app[STORE], config)
    except ConfigError as e:
        raise _json_error(
            web.HTTPBadRequest, "invalid run config", fields=e.errors
        ) from e
    try:
        run_id = await request.app[RUNS].launch(config)
    except RunConflict as e:
        raise _json_error(web.HTTPConflict, str(e)) from e
    request.app[AUDIT].record(
        _actor(request), "run.launch", target=str(run_id), remote=request.remote
    )
    logger.info("run: %d launched with %s", run_id, config)
    return json_response({"id": run_id}, status=201)


async def _read_json(request: web.Request) -> Any:
    """Return the decoded JSON body; 400 or 413 (JSON, one log line) if it is none.

    Besides bodies that are not JSON or nest too deeply for the decoder, a
    body may name a charset Python does not know (``LookupError``) or carry a
    ``Content-Encoding`` it is not encoded in (``RequestPayloadError``).
    """
    try:
        raw = await request.read()
        return json.loads(raw.decode(request.charset or "utf-8"))
    except web.HTTPRequestEntityTooLarge as e:
        logger.warning("launch: refused a body of more than %d bytes", MAX_BODY_BYTES)
        body = strict_dumps({"error": "body is too large", "fields": {}})
        raise web.HTTPRequestEntityTooLarge(
            MAX_BODY_BYTES,
            request.content_length or MAX_BODY_BYTES + 1,
            text=body,
            content_type="application/json",
        ) from e
    except (
        ValueError,
        RecursionError,
        LookupError,
        web.RequestPayloadError,
    ) as e:
        logger.warning("launch: refused a body that is not JSON: %.200s", e)
        raise _json_error(
            web.HTTPBadRequest, "body must be a JSON object", fields={}
        ) from None


async def stop_run(request: web.Request) -> web.Response:
    """Stop the active run; 404 if unknown, 409 if it is not active."""
    await require_admin(request)
    run_id = _run_id(request)
    if request.app[STORE].get_run(run_id, with_rounds=False) is None:
        raise _json_error(web.HTTPNotFound, "no such run")
    if not await request.app[RUNS].stop(run_id):
        raise _json_error(web.HTTPConflict, f"run {run_id} is not active")
    request.app[AUDIT].record(
        _actor(request), "run.stop", target=str(run_id), remote=request.remote
    )
    run = request.app[STORE].get_run(run_id, with_rounds=False)
    assert run is not None  # it existed above and runs are never deleted
    return json_response(run.to_dict())


def _progress_dict(progress: ProgressView | None) -> dict[str, Any] | None:
    return progress.to_dict() if progress is not None else None


def run_with_progress(run: RunView, progress: ProgressView | None) -> dict[str, Any]:
    """Return a run as ``GET /api/runs/{id}`` shows it, with its live progress."""
    mine = progress is not None and progress.run_id == run.id
    return {**run.to_dict(), "progress": _progress_dict(progress) if mine else None}


async def download_model(request: web.Request) -> web.StreamResponse:
    """Return the latest global model of a run as an .npz file."""
    run_id = _run_id(request)
    path = request.app[STORE].latest_model_path(run_id)
    if path is None:
        raise _json_error(web.HTTPNotFound, "no model for this run")
    request.app[AUDIT].record(
        _actor(request), "model.download", target=str(run_id), remote=request.remote
    )
    return web.FileResponse(
        path,
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'attachment; filename="fednet-run-{run_id}.npz"',
        },
    )
