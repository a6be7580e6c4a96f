"""The OpenAPI document: it names every route and states RunConfig's rules."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from aiohttp import web

from fednet.config import RunConfig
from fednet.exceptions import ConfigError
from fednet.server.runconfig_schema import RUN_CONFIG_CHOICES, RUN_CONFIG_RANGES
from fednet.server.openapi import OPENAPI_PATH, build_document, openapi_operations
from tests.server.conftest import AppFactory

DOCUMENTED_PREFIXES = ("/api/",)
DOCUMENTED_PATHS = {"/healthz", "/metrics"}


def _app_operations(app: web.Application) -> set[tuple[str, str]]:
    """Return the app's (METHOD, path) pairs that the document must describe.

    aiohttp adds a HEAD route beside every GET (``allow_head``); HEAD answers
    as GET without a body (RFC 9110), so the document leaves it out.
    """
    pairs = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        documented = path.startswith(DOCUMENTED_PREFIXES) or path in DOCUMENTED_PATHS
        if documented and route.method != "HEAD":
            pairs.add((route.method, path))
    return pairs


async def _served_document(make_client: AppFactory, **settings: Any) -> Any:
    client = await make_client(**settings)
    resp = await client.get(OPENAPI_PATH)
    assert resp.status == 200 and resp.content_type == "application/json"
    return client.app, await resp.json()


async def test_document_names_exactly_the_registered_routes(
    make_client: AppFactory,
) -> None:
    """Every /api/*, /healthz and /metrics route is in the document, and no other."""
    app, document = await _served_document(make_client, admin_token="s3cret")
    assert app is not None
    assert openapi_operations(document) == _app_operations(app)
    assert ("POST", "/api/runs/{run_id}/stop") in openapi_operations(document)


@pytest.mark.parametrize("admin", [True, False])
def test_document_loads_in_schemathesis_with_every_operation(admin: bool) -> None:
    """schemathesis reads the document without a schema error in any operation."""
    document = build_document(admin_token_required=admin)
    schema = schemathesis.openapi.from_dict(document)
    labels = {result.ok().label for result in schema.get_all_operations()}
    assert labels == {f"{m} {p}" for m, p in openapi_operations(document)}


async def test_writes_declare_the_admin_token_only_when_there_is_one(
    make_client: AppFactory,
) -> None:
    """With an admin token the writes need the bearer scheme and may answer 401."""
    _, guarded = await _served_document(make_client, admin_token="s3cret")
    launch = guarded["paths"]["/api/runs"]["post"]
    assert launch["security"] == [{"adminToken": []}] and "401" in launch["responses"]
    scheme = guarded["components"]["securitySchemes"]["adminToken"]
    assert scheme == {"type": "http", "scheme": "bearer"}
    open_doc = build_document(admin_token_required=False)
    launch = open_doc["paths"]["/api/runs"]["post"]
    assert "security" not in launch
    assert "401" not in launch["responses"]  # 403 and 415: a foreign Origin, a form
    assert "securitySchemes" not in open_doc["components"]


_NEEDS: dict[str, dict[str, Any]] = {
    "distributed": {"secure_aggregation": True, "secagg_clip": 7.0},
}


def _accepted(**fields: Any) -> bool:
    try:
        RunConfig.from_dict(fields)
    except ConfigError:
        return False
    return True


@pytest.mark.parametrize("name", sorted(RUN_CONFIG_RANGES))
def test_run_config_ranges_are_those_run_config_enforces(name: str) -> None:
    """Each documented bound is where RunConfig's validation starts to refuse.

    min_clients is 1 beside the others, so clients_per_round may be 1.
    """
    lo, hi, lo_open = RUN_CONFIG_RANGES[name]
    step = 1 if isinstance(lo, int) else 1e-9
    base = {} if name == "min_clients" else {"min_clients": 1}

    def accepted(value: float) -> bool:
        return _accepted(**{**base, name: value})

    assert accepted(hi) and not accepted(hi + step)
    assert accepted(lo) is not lo_open
    assert accepted(lo + step) and not accepted(lo - step)


def test_run_config_schema_has_every_field_with_its_default() -> None:
    """The request body names each RunConfig field, its default and its choices."""
    schema = build_document(admin_token_required=False)["components"]["schemas"]
    properties = schema["RunConfig"]["properties"]
    assert {k: v["default"] for k, v in properties.items()} == RunConfig().to_dict()
    for name, choices in RUN_CONFIG_CHOICES.items():
        assert properties[name]["enum"] == list(choices)
        # a CSV task may be any problem; the built-in ones are classification;
        # distributed DP needs secure aggregation with room for its noise
        assert all(
            _accepted(**{"task": "csv", name: choice, **_NEEDS.get(choice, {})})
            for choice in choices
        )
    assert not _accepted(task="digits", problem="regression")
