"""The OpenAPI 3.0 document of the HTTP API, served at ``GET /api/openapi.json``.

The bodies' schemas live in :mod:`fednet.server.components`. The document
depends on the server's settings in one respect: with an admin token, the
writes declare the ``adminToken`` bearer scheme and their ``401``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from fednet import __version__
from fednet.server.components import (
    INT64_MAX,
    INT64_MIN,
    Schema,
    component_schemas,
    ref,
)
from fednet.server.dashboard import strict_dumps
from fednet.server.keys import SETTINGS

OPENAPI_PATH = "/api/openapi.json"

_RUN_ID: Schema = {
    "name": "run_id",
    "in": "path",
    "required": True,
    "description": "a run's id; one outside int64 names no run (404)",
    "schema": {"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX},
}


def _json(schema: Schema, description: str) -> Schema:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }


def _error(description: str) -> Schema:
    return _json(ref("Error"), description)


def _text(description: str, content_type: str = "text/plain") -> Schema:
    return {
        "description": description,
        "content": {content_type: {"schema": {"type": "string"}}},
    }


def _read(summary: str, ok: Schema, not_found: str | None = None) -> Schema:
    responses = {"200": ok}
    if not_found is not None:
        responses["404"] = _error(not_found)
    return {"summary": summary, "responses": responses}


def _write(summary: str, admin: bool, responses: Schema) -> Schema:
    """Return a write operation; with an admin token, it is needed (or a session).

    Without the bearer token, a logged-in dashboard session is accepted,
    with its CSRF token (403 without).
    """
    operation: Schema = {"summary": summary, "responses": dict(responses)}
    if admin:
        operation["responses"]["401"] = _error("the admin token is missing or wrong")
        operation["responses"]["403"] = _error(
            "a dashboard session without its X-CSRF-Token header"
        )
        operation["security"] = [{"adminToken": []}]
    return operation


def _launch(admin: bool) -> Schema:
    operation = _write(
        "Launch a run (one at a time)",
        admin,
        {
            "201": _json(ref("Launched"), "the run was created"),
            "400": _error("the body is not JSON, or a field is unknown or invalid"),
            "409": _error("another run is queued or running"),
            "413": _error("the body is larger than 1 MiB"),
        },
    )
    operation["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": ref("RunConfig")}},
    }
    return operation


def _stop(admin: bool) -> Schema:
    operation = _write(
        "Stop the active run",
        admin,
        {
            "200": _json(ref("Run"), "the stopped run"),
            "404": _error("no such run"),
            "409": _error("the run is not the active one"),
        },
    )
    operation["parameters"] = [_RUN_ID]
    return operation


def _run_paths(admin: bool) -> Schema:
    runs_list = {"type": "array", "items": ref("RunSummary")}
    detail = _json(ref("RunDetail"), "the run")
    npz = {"schema": {"type": "string", "format": "binary"}}
    model = {
        "description": "the global model of the last round as .npz",
        "content": {"application/octet-stream": npz},
    }
    return {
        "/api/runs": {
            "get": _read("The 100 newest runs", _json(runs_list, "newest first")),
            "post": _launch(admin),
        },
        "/api/runs/{run_id}": {
            "parameters": [_RUN_ID],
            "get": _read("One run with its rounds", detail, "no such run"),
        },
        "/api/runs/{run_id}/stop": {"post": _stop(admin)},
        "/api/runs/{run_id}/model": {
            "parameters": [_RUN_ID],
            "get": _read(
                "The run's latest global model", model, "no model for this run (yet)"
            ),
        },
    }


def _paths(admin: bool) -> Schema:
    clients = {"type": "array", "items": ref("Client")}
    paths: Schema = {
        "/healthz": {"get": _read("Liveness for load balancers", _text("ok"))},
        "/metrics": {
            "get": _read(
                "Prometheus metrics",
                _text("the text exposition format", CONTENT_TYPE_LATEST),
            )
        },
        OPENAPI_PATH: {
            "get": _read(
                "This document", _json({"type": "object"}, "OpenAPI 3.0")
            )
        },
        "/api/status": {
            "get": _read("The server and its active run", _json(ref("Status"), "ok"))
        },
        "/api/clients": {
            "get": _read(
                "Every known client, connected first", _json(clients, "ok")
            )
        },
        **_run_paths(admin),
    }
    return paths


def build_document(*, admin_token_required: bool) -> Schema:
    """Return the OpenAPI document of the coordinator's HTTP API.

    Args:
        admin_token_required: whether the server has an admin token, so
            that launching and stopping runs need it.
    """
    document: Schema = {
        "openapi": "3.0.3",
        "info": {
            "title": "fednet coordinator",
            "version": __version__,
            "description": "Reads are open. Writes need the admin token as "
            "`Authorization: Bearer TOKEN` when the server has one (or a logged-in "
            "dashboard session with its X-CSRF-Token header).",
        },
        "paths": _paths(admin_token_required),
        "components": {"schemas": component_schemas()},
    }
    if admin_token_required:
        scheme = {"type": "http", "scheme": "bearer"}
        document["components"]["securitySchemes"] = {"adminToken": scheme}
    return document


async def openapi_document(request: web.Request) -> web.Response:
    """Return the OpenAPI document of this server's HTTP API."""
    required = request.app[SETTINGS].admin_token is not None
    body = strict_dumps(build_document(admin_token_required=required))
    return web.Response(text=body, content_type="application/json")


def openapi_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    """Return the (METHOD, path) pairs a document describes."""
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in methods
    }
