"""The OpenAPI 3.0 document of the HTTP API, served at ``GET /api/openapi.json``.

The bodies' schemas live in :mod:`fednet.server.components` (the
statistics' in :mod:`fednet.server.stats_openapi`). The document
depends on the server's settings in one respect: with an admin token, the
writes declare the ``adminToken`` bearer scheme and their ``401``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from fednet import __version__
from fednet.fields import INT64_MAX, INT64_MIN
from fednet.server.components import Schema, component_schemas, ref
from fednet.server.dashboard import strict_dumps
from fednet.server.keys import SETTINGS
from fednet.server.openapi_ops import (
    audit_paths,
    error_body,
    json_body,
    read_op,
    site_paths,
    text_body,
    write_op,
)
from fednet.server.stats_openapi import stats_paths, stats_schemas

OPENAPI_PATH = "/api/openapi.json"

_RUN_ID: Schema = {
    "name": "run_id",
    "in": "path",
    "required": True,
    "description": "a run's id; one outside int64 names no run (404)",
    "schema": {"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX},
}


def _launch(admin: bool) -> Schema:
    operation = write_op(
        "Launch a run (one at a time)",
        admin,
        {
            "201": json_body(ref("Launched"), "the run was created"),
            "400": error_body("the body is not JSON, or a field is unknown or invalid"),
            "409": error_body("another run is queued or running"),
            "413": error_body("the body is larger than 1 MiB"),
        },
    )
    operation["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": ref("RunConfig")}},
    }
    return operation


def _import(admin: bool) -> Schema:
    operation = write_op(
        "Store an uploaded bundle as a run to warm-start from",
        admin,
        {
            "201": json_body(ref("Launched"), "the run the bundle was stored as"),
            "400": error_body("not a bundle, or one this coordinator cannot use"),
            "413": error_body("the bundle is larger than 64 MiB"),
            "415": error_body("a body that is not application/zip"),
        },
    )
    binary = {"schema": {"type": "string", "format": "binary"}}
    operation["requestBody"] = {
        "required": True,
        "content": {"application/zip": binary},
    }
    return operation


def _stop(admin: bool) -> Schema:
    operation = write_op(
        "Stop the active run",
        admin,
        {
            "200": json_body(ref("Run"), "the stopped run"),
            "404": error_body("no such run"),
            "409": error_body("the run is not the active one"),
        },
    )
    operation["parameters"] = [_RUN_ID]
    return operation


def _run_paths(admin: bool) -> Schema:
    runs_list = {"type": "array", "items": ref("RunSummary")}
    detail = json_body(ref("RunDetail"), "the run")
    npz = {"schema": {"type": "string", "format": "binary"}}
    model = {
        "description": "the global model of the last round as .npz",
        "content": {"application/octet-stream": npz},
    }
    return {
        "/api/runs": {
            "get": read_op("The 100 newest runs", json_body(runs_list, "newest first")),
            "post": _launch(admin),
        },
        "/api/runs/{run_id}": {
            "parameters": [_RUN_ID],
            "get": read_op("One run with its rounds", detail, "no such run"),
        },
        "/api/runs/{run_id}/stop": {"post": _stop(admin)},
        "/api/runs/{run_id}/model": {
            "parameters": [_RUN_ID],
            "get": read_op(
                "The run's latest global model", model, "no model for this run (yet)"
            ),
        },
        "/api/runs/{run_id}/bundle": {"parameters": [_RUN_ID], "get": _bundle()},
        "/api/bundles": {"post": _import(admin)},
    }


def _bundle() -> Schema:
    """Return the download of a run's model as a bundle (docs/data.md)."""
    zipped = {"schema": {"type": "string", "format": "binary"}}
    ok = {"description": "a zip: bundle.json and model.npz", "content": {
        "application/zip": zipped}}
    operation = read_op("The run's best or last model as a bundle", ok,
                        "no such run, or no model yet")
    operation["responses"]["400"] = error_body("which is not best or last")
    operation["responses"]["409"] = error_body("the run has no shared preprocessing")
    operation["parameters"] = [{
        "name": "which", "in": "query", "description": "best or last (default)",
        "schema": {"type": "string", "enum": ["best", "last"], "default": "last"},
    }]
    return operation


def _paths(admin: bool) -> Schema:
    clients = {"type": "array", "items": ref("Client")}
    paths: Schema = {
        "/healthz": {"get": read_op("Liveness for load balancers", text_body("ok"))},
        "/metrics": {
            "get": read_op(
                "Prometheus metrics",
                text_body("the text exposition format", CONTENT_TYPE_LATEST),
            )
        },
        OPENAPI_PATH: {
            "get": read_op(
                "This document", json_body({"type": "object"}, "OpenAPI 3.0")
            )
        },
        "/api/status": {
            "get": read_op(
                "The server and its active run", json_body(ref("Status"), "ok")
            )
        },
        "/api/clients": {
            "get": read_op(
                "Every known client, connected first", json_body(clients, "ok")
            )
        },
        **_run_paths(admin),
        **site_paths(admin),
        **audit_paths(admin),
        **stats_paths(admin),
    }
    _guard(paths, admin)
    return paths


_PUBLIC = ("/healthz", OPENAPI_PATH)


def _guard(paths: Schema, admin: bool) -> None:
    """Add the read guard (with tokens) and the browser-safety answers of writes.

    With an admin or viewer token every read but :data:`_PUBLIC` needs one
    of them (401). Every write refuses a body that is not JSON (415) and a
    foreign ``Origin`` (403), tokens or not.
    """
    for path, item in paths.items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            responses = operation["responses"]
            if method == "post":
                responses.setdefault("403", error_body("a foreign Origin header"))
                responses.setdefault(
                    "415", error_body("a body that is not application/json")
                )
            elif admin and path not in _PUBLIC and "security" not in operation:
                responses["401"] = error_body("a viewer or admin token is required")
                operation["security"] = [{"viewerToken": []}, {"adminToken": []}]


def build_document(*, admin_token_required: bool) -> Schema:
    """Return the OpenAPI document of the coordinator's HTTP API.

    Args:
        admin_token_required: whether the server has an admin or a viewer
            token, so that reads need one and writes the admin token.
    """
    document: Schema = {
        "openapi": "3.0.3",
        "info": {
            "title": "fednet coordinator",
            "version": __version__,
            "description": "With an admin or viewer token set, reads need one of "
            "them as `Authorization: Bearer TOKEN`; writes need the admin token (or "
            "an admin's dashboard session with its X-CSRF-Token header), a JSON "
            "body and no foreign Origin.",
        },
        "paths": _paths(admin_token_required),
        "components": {"schemas": {**component_schemas(), **stats_schemas()}},
    }
    if admin_token_required:
        scheme = {"type": "http", "scheme": "bearer"}
        document["components"]["securitySchemes"] = {
            "adminToken": scheme,
            "viewerToken": scheme,
        }
    return document


async def openapi_document(request: web.Request) -> web.Response:
    """Return the OpenAPI document of this server's HTTP API."""
    settings = request.app[SETTINGS]
    required = settings.admin_token is not None or settings.viewer_token is not None
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
