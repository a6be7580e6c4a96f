"""JSON Schemas of the API's bodies: the ``components`` of its OpenAPI document.

What can be derived from the code is: the runs', rounds' and progress's
fields from the dataclasses of ``fednet.views``, the enums and defaults from
``fednet.config``, the store's statuses and the round machine's phases, so a
new field, task, model or phase shows up here by itself. RunConfig's
schema is :mod:`.runconfig_schema`.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from fednet.machine import Phase
from fednet.server.audit import AuditEntry
from fednet.server.runconfig_schema import run_config_schema
from fednet.server.sites import SITE_NAME, ClientAuth, Site
from fednet.server.store import ACTIVE_STATUSES
from fednet.views import END_STATUSES, PrivacyView, ProgressView, RoundView, RunView

Schema = dict[str, Any]

RUN_STATUSES = (*ACTIVE_STATUSES, *sorted(END_STATUSES))
PHASES = ("waiting", *(phase.value for phase in Phase))

NUMBER: Schema = {"type": "number"}
INTEGER: Schema = {"type": "integer"}
STRING: Schema = {"type": "string"}
BOOLEAN: Schema = {"type": "boolean"}
# NaN and infinities (a diverged model's loss) are sent as null: strict JSON.
METRIC: Schema = {"type": "number", "nullable": True}
STRING_OR_NULL: Schema = {"type": "string", "nullable": True}
OBJECT_OR_NULL: Schema = {"type": "object", "nullable": True}


def ref(name: str) -> Schema:
    """Return a reference to the component schema ``name``."""
    return {"$ref": f"#/components/schemas/{name}"}


def _ref_or_null(name: str) -> Schema:
    """Return the component ``name`` or null (OpenAPI 3.0 ignores siblings of $ref)."""
    return {"allOf": [ref(name)], "nullable": True}


def _object(properties: Schema, *optional: str) -> Schema:
    """Return an object schema whose properties are all required but ``optional``."""
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
    }


def _type_schema(hint: Any) -> Schema:
    """Return the JSON Schema of a view field's type, as ``strict_dumps`` writes it."""
    args = typing.get_args(hint)
    if type(None) in args:  # X | None
        (inner,) = (a for a in args if a is not type(None))
        return {**_type_schema(inner), "nullable": True}
    origin = typing.get_origin(hint)
    if origin is tuple:
        return {"type": "array", "items": _type_schema(args[0])}
    if origin is dict:
        return {"type": "object", "additionalProperties": _type_schema(args[1])}
    if hint is float:
        return NUMBER
    if hint is Any:
        return {}
    return {bool: BOOLEAN, int: INTEGER, str: STRING}[hint]


def _view_schema(cls: type[Any], *skip: str, **overrides: Schema) -> Schema:
    """Return the object schema of a view's ``to_dict()``, derived from its fields.

    Fields with a default are optional (``to_dict`` may leave them out);
    ``skip`` names fields ``to_dict`` shows its own way.
    """
    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.name not in skip]
    properties = {
        f.name: overrides.get(f.name, None) or _type_schema(hints[f.name])
        for f in fields
    }
    optional = [f.name for f in fields if f.default is not dataclasses.MISSING]
    return _object(properties, *optional)


def _round_schema() -> Schema:
    # Metrics are finite when recorded; strict_dumps would write a NaN as null.
    metrics = {"type": "object", "additionalProperties": METRIC}
    overrides = {"fit_metrics": metrics, "metrics": metrics, "test_metrics": metrics}
    schema = _view_schema(RoundView, **overrides)
    schema["properties"]["client_metrics"]["additionalProperties"] = metrics
    return schema


def _run_properties() -> Schema:
    status = {"type": "string", "enum": list(RUN_STATUSES)}
    config = ref("RunConfig")
    privacy = ref("Privacy")
    schema = _view_schema(
        RunView, "rounds", "latest", status=status, config=config, privacy=privacy
    )
    properties: Schema = schema["properties"]
    return properties


def _client_schema() -> Schema:
    properties = {
        "id": STRING,
        "name": STRING,
        "status": STRING,
        "task": STRING,
        "num_examples": INTEGER,
        "schema": OBJECT_OR_NULL,
        "address": STRING,
        "connected_since": NUMBER,
        "last_seen": NUMBER,
        "eligible": BOOLEAN,
        "note": STRING_OR_NULL,
        "trainers": {"type": "array", "items": _object(
            {"name": STRING, "fingerprint": STRING_OR_NULL})},
        "last_round": {**OBJECT_OR_NULL, "additionalProperties": METRIC},
    }
    # A site's address and schema are for admins; viewers get the rest.
    return _object(properties, "address", "schema")


def _status_schema() -> Schema:
    properties = {
        "version": STRING,
        "protocol_version": INTEGER,
        "uptime_s": NUMBER,
        "clients_connected": INTEGER,
        "active_run": _ref_or_null("Progress"),
        "join_token_required": BOOLEAN,
        "admin_token_required": BOOLEAN,
        "client_auth": {"type": "string", "enum": list(typing.get_args(ClientAuth))},
        "stats": {"type": "object", "additionalProperties": INTEGER},
    }
    return _object(properties)


def _error_schema() -> Schema:
    fields = {
        "type": "object",
        "description": "one message per unknown or invalid RunConfig field",
        "additionalProperties": STRING,
    }
    return _object({"error": STRING, "fields": fields}, "fields")


def component_schemas() -> Schema:
    """Return every named schema of the API's JSON bodies."""
    run = _run_properties()
    phase = {"type": "string", "enum": list(PHASES)}
    summary = {**run, "loss": METRIC, "accuracy": METRIC}
    detail = {
        **run,
        "rounds": {"type": "array", "items": ref("Round")},
        "progress": _ref_or_null("Progress"),
    }
    return {
        "Error": _error_schema(),
        "RunConfig": run_config_schema(),
        "Launched": _object({"id": INTEGER}),
        "Progress": _view_schema(ProgressView, phase=phase),
        "Round": _round_schema(),
        "Privacy": _view_schema(PrivacyView),
        "Run": _object(run),
        "RunSummary": _object(summary),
        "RunDetail": _object(detail),
        "Client": _client_schema(),
        "Status": _status_schema(),
        "AuditEntry": _view_schema(AuditEntry),
        **_site_schemas(),
    }


def _site_schemas() -> Schema:
    name = {"type": "string", "pattern": SITE_NAME.pattern}
    site = _view_schema(Site)
    site["properties"]["revoked"] = BOOLEAN
    site["required"].append("revoked")
    new_site = {**_object({"name": name}), "additionalProperties": False}
    return {
        "Site": site,
        "NewSite": new_site,
        "SiteCredential": _object({"name": STRING, "credential": STRING}),
    }
