"""GET /metrics: Prometheus text with clients, rounds, bytes and rejections."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from fednet.server.events import RoundCompleted, RunStatus
from fednet.server.keys import EVENTS, STATS
from tests.server.conftest import (
    AppFactory,
    hello,
    receive,
    round_view,
    run_view,
    send,
)


async def _samples(
    client: object,
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = await client.get("/metrics")  # type: ignore[attr-defined]
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    text = await resp.text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_connected_clients_gauge_follows_sockets(make_client: AppFactory) -> None:
    """fednet_clients_connected counts open client sockets."""
    client = await make_client()
    assert (await _samples(client))[("fednet_clients_connected", ())] == 0
    async with client.ws_connect("/ws") as ws:
        await send(ws, hello("site-a"))
        await receive(ws)
        samples = await _samples(client)
    assert samples[("fednet_clients_connected", ())] == 1
    assert samples[("fednet_bytes_received_total", ())] > 0
    assert samples[("fednet_bytes_sent_total", ())] > 0


async def test_rejections_are_counted_by_reason(make_client: AppFactory) -> None:
    """A malformed frame shows up as a rejected update with its reason."""
    client = await make_client()
    async with client.ws_connect("/ws") as ws:
        await ws.send_str("{not json")
        await receive(ws)
    client.app[STATS]["rejected:stale_round"] += 2
    samples = await _samples(client)
    assert (
        samples[("fednet_updates_rejected_total", (("reason", "protocol_error"),))] == 1
    )
    assert samples[("fednet_updates_rejected_total", (("reason", "stale_round"),))] == 2


async def test_round_events_feed_the_counter_and_histogram(
    make_client: AppFactory,
) -> None:
    """Each round_finished event counts one round and observes its duration."""
    client = await make_client()
    hub = client.app[EVENTS]
    for duration in (0.2, 3.0):
        hub.publish(RoundCompleted(1, round_view(duration_s=duration)))
    hub.publish(RunStatus(run_view(1, "finished"), None))
    for _ in range(50):
        await asyncio.sleep(0)
    samples = await _samples(client)
    assert samples[("fednet_rounds_completed_total", ())] == 2
    assert samples[("fednet_round_duration_seconds_count", ())] == 2
    assert samples[("fednet_round_duration_seconds_sum", ())] == 3.2
    assert samples[("fednet_round_duration_seconds_bucket", (("le", "0.5"),))] == 1
    assert samples[("fednet_runs_ended_total", (("status", "finished"),))] == 1


async def test_each_app_has_its_own_registry(make_client: AppFactory) -> None:
    """Two servers in one process do not share or clash over metrics."""
    first, second = await make_client(), await make_client()
    first.app[EVENTS].publish(RoundCompleted(1, round_view(duration_s=1.0)))
    await asyncio.sleep(0.01)
    assert (await _samples(first))[("fednet_rounds_completed_total", ())] == 1
    assert (await _samples(second))[("fednet_rounds_completed_total", ())] == 0
