"""Operations of the OpenAPI document: the shared builders, sites and audit."""

from __future__ import annotations

from fednet.server.components import Schema, ref


def json_body(schema: Schema, description: str) -> Schema:
    """Return a JSON response of ``schema``."""
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }


def error_body(description: str) -> Schema:
    """Return an ``Error`` response."""
    return json_body(ref("Error"), description)


def text_body(description: str, content_type: str = "text/plain") -> Schema:
    """Return a text response."""
    return {
        "description": description,
        "content": {content_type: {"schema": {"type": "string"}}},
    }


def read_op(summary: str, ok: Schema, not_found: str | None = None) -> Schema:
    """Return a read operation, with its 404 when there is one."""
    responses = {"200": ok}
    if not_found is not None:
        responses["404"] = error_body(not_found)
    return {"summary": summary, "responses": responses}


def write_op(summary: str, admin: bool, responses: Schema) -> Schema:
    """Return a write operation; with an admin token, it is needed (or a session).

    Without the bearer token, a logged-in dashboard session is accepted,
    with its CSRF token (403 without).
    """
    operation: Schema = {"summary": summary, "responses": dict(responses)}
    if admin:
        missing = error_body("the admin token is missing or wrong")
        operation["responses"]["401"] = missing
        operation["responses"]["403"] = error_body(
            "a viewer, a foreign Origin, or a session without its X-CSRF-Token"
        )
        operation["security"] = [{"adminToken": []}]
    return operation


_SITE_NAME: Schema = {
    "name": "name",
    "in": "path",
    "required": True,
    "description": "a site's name",
    "schema": {"type": "string"},
}


def site_paths(admin: bool) -> Schema:
    """Return the admin's site operations (the list too: it is not public)."""
    sites = {"type": "array", "items": ref("Site")}
    ok = {"200": json_body(sites, "ok")}
    listing = write_op("Every registered site, by name", admin, ok)
    add = write_op(
        "Register a site; its credential is answered once",
        admin,
        {
            "201": json_body(ref("SiteCredential"), "the site's credential"),
            "400": error_body('the body is not {"name": ...}, or the name is invalid'),
            "409": error_body("a site of that name exists"),
        },
    )
    add["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": ref("NewSite")}},
    }
    revoke = write_op(
        "Revoke a site and close its connection",
        admin,
        {
            "200": json_body(ref("Site"), "the revoked site"),
            "404": error_body("no such site"),
            "409": error_body("the site is revoked already"),
        },
    )
    revoke["parameters"] = [_SITE_NAME]
    return {
        "/api/sites": {"get": listing, "post": add},
        "/api/sites/{name}/revoke": {"post": revoke},
    }


def audit_paths(admin: bool) -> Schema:
    """Return the admin's read of the audit log."""
    entries = {"type": "array", "items": ref("AuditEntry")}
    listing = write_op(
        "The audit log, newest first",
        admin,
        {
            "200": json_body(entries, "newest first"),
            "400": error_body("limit or before is not an integer in range"),
        },
    )
    listing["parameters"] = [
        _query("limit", "entries to return (default 100)", 1, 1000),
        _query("before", "only entries with a smaller id (the next page)", None, None),
    ]
    return {"/api/audit": {"get": listing}}


def _query(name: str, description: str, lo: int | None, hi: int | None) -> Schema:
    schema: Schema = {"type": "integer"}
    if lo is not None:
        schema["minimum"] = lo
    if hi is not None:
        schema["maximum"] = hi
    return {"name": name, "in": "query", "description": description, "schema": schema}
