"""Prometheus metrics of the coordinator, served as text on ``GET /metrics``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from fednet import __version__
from fednet.server.events import RoundCompleted, RunStatus, ServerEvent
from fednet.server.keys import EVENTS, REGISTRY, RUNS, STATS

logger = logging.getLogger(__name__)

# Rounds of the bundled tasks take milliseconds; real ones minutes.
ROUND_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)


class ServerMetrics:
    """One app's Prometheus registry: event-driven round metrics + live state."""

    def __init__(self, app: web.Application) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.rounds_completed = Counter(
            "fednet_rounds_completed",
            "Training rounds completed and recorded",
            registry=self.registry,
        )
        self.round_duration = Histogram(
            "fednet_round_duration_seconds",
            "Wall-clock duration of completed rounds",
            buckets=ROUND_BUCKETS,
            registry=self.registry,
        )
        self.runs_ended = Counter(
            "fednet_runs_ended",
            "Runs that ended, by final status",
            ["status"],
            registry=self.registry,
        )
        self.registry.register(_StateCollector(app))

    def observe(self, event: ServerEvent) -> None:
        """Update the event-driven metrics from one server event."""
        if isinstance(event, RoundCompleted):
            self.rounds_completed.inc()
            self.round_duration.observe(event.round.duration_s)
        elif isinstance(event, RunStatus) and event.run is not None:
            if event.run.ended:
                self.runs_ended.labels(status=event.run.status).inc()


METRICS = web.AppKey("metrics", ServerMetrics)


class _StateCollector(Collector):
    """Read gauges and byte counters from the app's state at scrape time."""

    def __init__(self, app: web.Application) -> None:
        self._app = app

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        app = self._app
        info = GaugeMetricFamily("fednet_info", "Server version", labels=["version"])
        info.add_metric([__version__], 1.0)
        yield info
        registry = app.get(REGISTRY)
        connected = len(registry.connected()) if registry is not None else 0
        yield GaugeMetricFamily(
            "fednet_clients_connected", "Clients with an open socket", value=connected
        )
        runs = app.get(RUNS)
        active = runs is not None and runs.active is not None
        yield GaugeMetricFamily(
            "fednet_run_active",
            "1 while a run is queued or running",
            value=float(active),
        )
        stats = app[STATS]
        for name, help_text in (
            ("bytes_received", "Bytes received from clients over /ws"),
            ("bytes_sent", "Bytes sent to clients over /ws"),
        ):
            yield CounterMetricFamily(f"fednet_{name}", help_text, value=stats[name])
        rejected = CounterMetricFamily(
            "fednet_updates_rejected",
            "Client messages rejected, by reason",
            labels=["reason"],
        )
        for key, count in sorted(stats.items()):
            if key.startswith("rejected:"):
                rejected.add_metric([key.partition(":")[2]], count)
        yield rejected


def setup_metrics(app: web.Application) -> None:
    """Create the app's registry, its event listener and ``GET /metrics``."""
    app[METRICS] = ServerMetrics(app)
    app.router.add_get("/metrics", metrics_view)
    app.cleanup_ctx.append(_listen_ctx)


async def metrics_view(request: web.Request) -> web.Response:
    """Return every metric in the Prometheus text exposition format."""
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _listen_ctx(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(_listen(app), name="metrics-listener")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _listen(app: web.Application) -> None:
    hub, metrics = app[EVENTS], app[METRICS]
    while True:
        queue = hub.subscribe()
        try:
            while (published := await queue.get()) is not None:
                metrics.observe(published.event)
        finally:
            hub.unsubscribe(queue)
        logger.warning("metrics: event queue overflowed; some rounds may be uncounted")
