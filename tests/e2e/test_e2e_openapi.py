"""A real ``fednet server`` against its OpenAPI document, fuzzed by schemathesis.

The document is the one the server serves (a test checks they are equal);
schemathesis sends every operation its coverage cases (boundaries, missing
and wrong-typed values, derived from the schemas) and ``MAX_EXAMPLES``
positive and negative fuzzed cases, derandomized, once with the admin token
and once without. Every built-in check runs on each answer: no 5xx, a
documented status code, content type and headers, a body matching its
schema, valid input accepted, invalid input refused, auth enforced, and
``405`` for undocumented methods.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis import Case
from schemathesis.specs.openapi.checks import positive_data_acceptance

from fednet.config import ASYNC_STRATEGIES, DP_STRATEGIES, RunConfig
from fednet.runmetrics import metric_errors, metric_list
from fednet.secagg.rules import secagg_errors
from fednet.server.openapi import OPENAPI_PATH, build_document
from tests.e2e.conftest import Cluster, Server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

TOKEN = "fuzz-admin-token"
JOIN = "fuzz-join-token"  # with an admin token, clients need a credential
MAX_EXAMPLES = 30  # fuzzed cases per operation, both modes; coverage cases on top

# An uploaded bundle (POST /api/bundles) is sent as raw bytes, as octet-streams are.
schemathesis.serializer.alias("application/zip", "application/octet-stream")

schema = schemathesis.openapi.from_dict(
    build_document(admin_token_required=True),
    config=schemathesis.Config.from_dict(
        {
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
            },
            # Timing health checks would make a loaded machine fail the test.
            "suppress-health-check": ["all"],
        }
    ),
)


@pytest.fixture(scope="module")
def api_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """Start one coordinator with an admin token; print its log if a test failed."""
    cluster = Cluster(tmp_path_factory.mktemp("openapi"))
    failed_before = request.session.testsfailed
    try:
        extra = ("--admin-token", TOKEN, "--join-token", JOIN)
        server = cluster.server(*extra, token=TOKEN)
        yield _with_history(cluster, server)
    finally:
        cluster.stop()
        if request.session.testsfailed > failed_before:
            print(f"\n===== server log =====\n{cluster.logs()}")


def _with_history(cluster: Cluster, server: Server) -> Server:
    """Play a 2-round run with two clients, then let them go.

    So the answers checked include a run with rounds and metrics, its model
    and departed clients; with no client left, the runs the fuzzer launches
    only wait (and train nothing).
    """
    clients = [
        cluster.client(
            server, f"site-{i}", "--dataset", "digits", "--partition", f"{i}/2",
            "--join-token", JOIN,
        )
        for i in (1, 2)
    ]
    server.wait_for_clients(2, clients)
    resp = requests.post(
        f"{server.http_url}/api/runs",
        json={"rounds": 2, "min_clients": 2},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    assert resp.status_code == 201, resp.text
    assert server.wait_for_run(resp.json()["id"])["status"] == "finished"
    for client in clients:
        client.kill()
    server.wait_for(lambda: not server.connected(), "the clients to leave")
    return server


def _violates_cross_field_rule(body: Any) -> bool:
    """Return whether a body breaks a rule JSON Schema cannot state.

    ``clients_per_round`` must be 0 or at least ``min_clients`` (and at least
    ``2 * num_malicious + 3`` with Krum), ``dp=central`` takes only the
    strategies DP-FedAvg covers, ``mode=async`` only FedBuff's, without dp
    and with ``buffer_size`` within ``max_concurrency``, ``mode=gossip``
    fedavg or fedprox without dp; ``problem``,
    ``metrics`` and ``selection_metric`` must agree (and built-in tasks are
    classification only): rules over several fields, which the
    document states in words only, so a body the schema calls valid may
    still be refused. A ``warm_start`` must name a stored run whose model
    fits: a rule over the server's state.
    """
    if not isinstance(body, dict):
        return False
    if body.get("warm_start"):
        return True
    strategy = body.get("strategy", RunConfig().strategy)
    if body.get("dp") in ("central", "distributed") and strategy not in DP_STRATEGIES:
        return True
    if body.get("dp") == "distributed" and body.get("secure_aggregation") is not True:
        return True
    if strategy in ("krum", "multikrum") and body.get("num_malicious"):
        return True
    defaults = RunConfig()
    scoring = SimpleNamespace(**{
        name: body.get(name, getattr(defaults, name))
        for name in ("task", "problem", "metrics", "selection_metric", "positive_class")
    })
    if isinstance(scoring.metrics, list):
        scoring.metrics = tuple(scoring.metrics)
    # (a body the schema refuses is refused whatever these say)
    if metric_list(scoring.metrics) is None and metric_errors(scoring):
        return True  # regression of a built-in task, mixed metrics
    limit, size = body.get("max_concurrency", 0), body.get("buffer_size", 10)
    if body.get("mode") == "async" and (
        strategy not in ASYNC_STRATEGIES
        or body.get("dp", "off") != "off"
        or (type(limit) is type(size) is int and 0 < limit < size)
    ):
        return True
    if body.get("mode") == "gossip" and (
        strategy not in ASYNC_STRATEGIES or body.get("dp", "off") != "off"
    ):
        return True  # gossip: local fedavg or fedprox training, no dp
    if body.get("secure_aggregation") is True and _secagg_refuses(body):
        return True
    per_round = body.get("clients_per_round", 0)
    minimum = body.get("min_clients", RunConfig().min_clients)
    numbers = all(type(v) is int for v in (per_round, minimum))
    return numbers and 0 < per_round < minimum


def _secagg_refuses(body: dict[str, Any]) -> bool:
    """Return whether secure aggregation's rules refuse a body (sync, fedavg...)."""
    defaults = RunConfig()
    names = ("secure_aggregation", "secagg_threshold", "mode", "strategy", "dp",
             "min_clients", "clients_per_round", "secagg_clip", "dp_adaptive_clip",
             "dp_clip_norm", "dp_noise_multiplier")
    fields = SimpleNamespace(**{n: body.get(n, getattr(defaults, n)) for n in names})
    try:
        return bool(secagg_errors(fields))
    except TypeError:  # a mistyped field: the schema refuses the body anyway
        return False


def _call_and_validate(case: Case, server: Server, headers: dict[str, str]) -> None:
    """Send one case to the server and run every check on its answer."""
    # Any bytes fit the schema of an uploaded bundle; few are a bundle.
    cross_field = _violates_cross_field_rule(case.body) or case.path == "/api/bundles"
    excluded = [positive_data_acceptance] if cross_field else []
    with requests.Session() as session:
        case.call_and_validate(
            base_url=server.http_url,
            session=session,
            headers=headers,
            excluded_checks=excluded,
            timeout=30,
        )


def test_served_document_is_the_one_fuzzed(api_server: Server) -> None:
    """The server serves exactly the document the cases below are drawn from."""
    served = api_server.api.get(OPENAPI_PATH)
    assert served == build_document(admin_token_required=True)


def test_launch_and_stop_answer_as_documented(api_server: Server) -> None:
    """A launch, the run while it waits, its stop and a second stop, all checked.

    The fuzzer's first valid launch leaves a run waiting for clients, so it
    sees ``201`` once; this walks the rest of a run's life on purpose.
    """
    server, admin = api_server, {"Authorization": f"Bearer {TOKEN}"}
    active = server.api.get("/api/status")["active_run"]
    if active is not None:  # launched by a fuzzed case, if those ran first
        url = f"{server.http_url}/api/runs/{active['run_id']}/stop"
        requests.post(url, headers=admin, timeout=30)
    launch = schema["/api/runs"]["POST"].Case(body={"rounds": 1, "seed": 7})
    created = launch.call_and_validate(base_url=server.http_url, headers=admin)
    run = {"run_id": created.json()["id"]}
    detail = schema["/api/runs/{run_id}"]["GET"].Case(path_parameters=run)
    waiting = detail.call_and_validate(base_url=server.http_url, headers=admin).json()
    assert waiting["status"] == "queued" and waiting["progress"]["phase"] == "waiting"
    stop = schema["/api/runs/{run_id}/stop"]["POST"].Case(path_parameters=run)
    stopped = stop.call_and_validate(base_url=server.http_url, headers=admin)
    assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"
    again = stop.call_and_validate(base_url=server.http_url, headers=admin)
    assert again.status_code == 409


@schema.parametrize()
def test_api_answers_as_documented_with_admin_token(
    case: Case, api_server: Server
) -> None:
    """With the admin token, writes get past 401 and still answer as documented."""
    _call_and_validate(case, api_server, {"Authorization": f"Bearer {TOKEN}"})


@schema.parametrize()
def test_api_answers_as_documented_without_token(
    case: Case, api_server: Server
) -> None:
    """Without the token (or with a made-up one), writes are refused as documented."""
    _call_and_validate(case, api_server, {})
