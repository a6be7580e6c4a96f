"""The JSON API through aiohttp_client: status, runs, validation, tokens."""

from __future__ import annotations

import asyncio
import io
import logging

import pytest

from fednet.server.api import MAX_BODY_BYTES
from tests.server.conftest import AppFactory

JSON = {"Content-Type": "application/json"}


async def test_healthz_answers_ok(make_client: AppFactory) -> None:
    """Load balancers get 200 ok."""
    client = await make_client()
    resp = await client.get("/healthz")
    assert resp.status == 200 and (await resp.text()).strip() == "ok"


async def test_status_reports_version_clients_and_tokens(
    make_client: AppFactory,
) -> None:
    """The status endpoint describes the server."""
    client = await make_client(join_token="j")
    body = await (await client.get("/api/status")).json()
    assert body["clients_connected"] == 0 and body["active_run"] is None
    assert body["join_token_required"] is True and body["admin_token_required"] is False


async def test_launch_with_invalid_fields_lists_every_field(
    make_client: AppFactory,
) -> None:
    """400 with one message per bad or unknown field."""
    client = await make_client()
    resp = await client.post(
        "/api/runs",
        json={"task": "mnist", "learning_rate": -1, "rounds": "ten", "colour": "red"},
    )
    assert resp.status == 400
    fields = (await resp.json())["fields"]
    assert set(fields) == {"task", "learning_rate", "rounds", "colour"}
    assert "digits" in fields["task"] and "-1" in fields["learning_rate"]
    assert fields["colour"] == "unknown field"


async def test_launch_with_non_json_body_is_a_bad_request(
    make_client: AppFactory,
) -> None:
    """A body that is not JSON gets 400, not 500."""
    client = await make_client()
    resp = await client.post("/api/runs", data=b"rounds=3", headers=JSON)
    assert resp.status == 400
    resp = await client.post("/api/runs", json=[1, 2])
    assert resp.status == 400 and "config" in (await resp.json())["fields"]


async def test_second_launch_while_active_conflicts(make_client: AppFactory) -> None:
    """Only one run at a time: the second launch gets 409."""
    client = await make_client()
    first = await client.post("/api/runs", json={"rounds": 2})
    assert first.status == 201
    run_id = (await first.json())["id"]
    second = await client.post("/api/runs", json={"rounds": 2})
    assert second.status == 409
    run = await (await client.get(f"/api/runs/{run_id}")).json()
    assert run["status"] == "queued" and run["rounds"] == [] and run["error"] is None
    assert run["config"]["rounds"] == 2


async def test_stop_ends_the_run_and_frees_the_slot(make_client: AppFactory) -> None:
    """A stopped run says so, and a new run may start."""
    client = await make_client()
    run_id = (await (await client.post("/api/runs", json={})).json())["id"]
    resp = await client.post(f"/api/runs/{run_id}/stop")
    assert resp.status == 200 and (await resp.json())["status"] == "stopped"
    assert (await client.post(f"/api/runs/{run_id}/stop")).status == 409
    assert (await client.post("/api/runs", json={})).status == 201
    runs = await (await client.get("/api/runs")).json()
    assert [r["status"] for r in runs] == ["queued", "stopped"]


async def test_unknown_runs_are_not_found(make_client: AppFactory) -> None:
    """Missing runs give 404 on every run route."""
    client = await make_client()
    for path in ("/api/runs/99", "/api/runs/x", "/api/runs/99/model"):
        assert (await client.get(path)).status == 404
    assert (await client.post("/api/runs/99/stop")).status == 404


async def test_admin_token_guards_launch_and_stop(make_client: AppFactory) -> None:
    """Without the bearer token writes get 401; with it they work."""
    client = await make_client(admin_token="s3cret")
    assert (await client.post("/api/runs", json={})).status == 401
    bad = {"Authorization": "Bearer nope"}
    assert (await client.post("/api/runs", json={}, headers=bad)).status == 401
    good = {"Authorization": "Bearer s3cret"}
    resp = await client.post("/api/runs", json={}, headers=good)
    assert resp.status == 201
    run_id = (await resp.json())["id"]
    assert (await client.post(f"/api/runs/{run_id}/stop")).status == 401
    assert (await client.post(f"/api/runs/{run_id}/stop", headers=good)).status == 200
    assert (await client.get("/api/runs", headers=good)).status == 200


MALFORMED_BODIES = {
    "unknown charset": ({"Content-Type": "application/json; charset=foo"}, b"{}"),
    "not gzip": ({"Content-Encoding": "gzip", **JSON}, b"{}"),
}


@pytest.mark.parametrize("case", MALFORMED_BODIES, ids=list(MALFORMED_BODIES))
async def test_launch_with_undecodable_body_is_a_bad_request(
    make_client: AppFactory, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    """A body no decoder can read gets a JSON 400 and one log line, not a 500."""
    client = await make_client()
    headers, data = MALFORMED_BODIES[case]
    with caplog.at_level(logging.WARNING):
        resp = await client.post("/api/runs", data=data, headers=headers)
    assert resp.status == 400 and resp.content_type == "application/json"
    assert await resp.json() == {"error": "body must be a JSON object", "fields": {}}
    logged = [r for r in caplog.records if r.name == "fednet.server.api"]
    assert [r.exc_info for r in logged] == [None]


async def test_launch_with_oversized_body_answers_json_413(
    make_client: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A body past the size limit gets a JSON 413 (it was text) and one log line."""
    client = await make_client()
    body = io.BytesIO(b" " * (MAX_BODY_BYTES + 1))
    with caplog.at_level(logging.WARNING):
        resp = await client.post("/api/runs", data=body, headers=JSON)
    assert resp.status == 413 and resp.content_type == "application/json"
    assert (await resp.json())["error"] == "body is too large"
    assert "more than 1048576 bytes" in caplog.text


MALFORMED_FORMS = {
    "unknown charset": {
        "Content-Type": "application/x-www-form-urlencoded; charset=foo"
    },
    "not gzip": {
        "Content-Type": "application/x-www-form-urlencoded",
        "Content-Encoding": "gzip",
    },
    "multipart without boundary": {"Content-Type": "multipart/form-data"},
    "multipart, wrong boundary": {
        "Content-Type": "multipart/form-data; boundary=z"
    },
}


@pytest.mark.parametrize("path", ["/login", "/logout"])
@pytest.mark.parametrize("case", MALFORMED_FORMS, ids=list(MALFORMED_FORMS))
async def test_login_forms_that_cannot_be_decoded_are_bad_requests(
    make_client: AppFactory, caplog: pytest.LogCaptureFixture, path: str, case: str
) -> None:
    """A login or logout form no decoder can read gets 400, not a 500."""
    client = await make_client(admin_token="s3cret")
    with caplog.at_level(logging.WARNING):
        resp = await client.post(path, data=b"token=x", headers=MALFORMED_FORMS[case])
    assert resp.status == 400
    assert "refused a malformed form" in caplog.text


async def test_malformed_http_request_gets_400_and_one_log_line(
    make_client: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A request aiohttp cannot parse is logged as one warning, not a traceback."""
    client = await make_client()
    reader, writer = await asyncio.open_connection(client.host, client.port)
    with caplog.at_level(logging.WARNING):
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Probe: \x00\r\n\r\n")
        status_line = await reader.readline()
    writer.close()
    assert status_line.split()[1] == b"400"
    records = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert [(r.levelno, r.exc_info) for r in records] == [(logging.WARNING, None)]
    assert "refused a malformed request: Invalid header value char" in caplog.text
    assert "\n" not in records[0].getMessage()
