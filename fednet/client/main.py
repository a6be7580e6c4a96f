"""Start a client process: load its data, serve its status page, join."""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import logging
import random
import signal
import time
from collections.abc import Callable, Sequence
import zlib

from aiohttp import web

from fednet.client.runner import ClientRunner
from fednet.client.status import create_status_app
from fednet.client.sitetrainers import SiteTrainers, site_context
from fednet.client.trainer import Trainer
from fednet.learning.trainers.registry import site_trainer_names
from fednet.settings import ClientSettings
from fednet.learning.datasets import ClientData, load_builtin_partition, load_csv
from fednet.fitconfig import FitConfig
from fednet.typing import NDArray, NDArrays
from fednet.learning.fedstats import MIN_COUNT, FeatureStats

logger = logging.getLogger(__name__)


def load_client_data(settings: ClientSettings) -> tuple[ClientData | None, str]:
    """Load the client's data as its settings say; return it and a summary.

    Raises:
        DataError: if the CSV file cannot be used (names file, line and column).
    """
    if settings.data is not None:
        assert settings.label_column is not None
        data = load_csv(
            settings.data,
            settings.label_column,
            val_fraction=settings.val_fraction,
            seed=settings.seed,
        )
        if data.raw_train is not None and settings.min_count != MIN_COUNT:
            # Summarised again at the site's own suppression threshold.
            stats = FeatureStats.from_matrix(
                data.raw_train, settings.min_count, data.categories
            )
            data = dataclasses.replace(data, stats=stats)
        return data, data.description
    if settings.dataset == "synthetic":
        i, n = settings.partition
        return None, f"synthetic task, client {i} of {n} (no data)"
    assert settings.dataset is not None
    data = load_builtin_partition(
        settings.dataset,
        settings.partition,
        alpha=settings.alpha,
        seed=settings.seed,
        val_fraction=settings.val_fraction,
    )
    return data, data.description


class SlowTrainer(Trainer):
    """A Trainer that sleeps ``delay_s`` before each fit: a slow site, for tests.

    ``fednet client --fit-delay-s`` makes one (asynchronous mode's tests and
    benchmarks); the sleep runs in the fit's worker thread, so the client
    keeps answering heartbeats.
    """

    def __init__(
        self,
        data: ClientData | None,
        *,
        client_number: int,
        delay_s: float,
        trainers: SiteTrainers | None = None,
    ) -> None:
        super().__init__(data, client_number=client_number, trainers=trainers)
        self.delay_s = delay_s

    def fit(
        self, params: Sequence[NDArray], config: FitConfig
    ) -> tuple[NDArrays, int, dict[str, float]]:
        """Sleep, then train as a Trainer does."""
        time.sleep(self.delay_s)
        return super().fit(params, config)


def load_trainers(
    settings: ClientSettings, data: ClientData | None, number: int
) -> SiteTrainers:
    """Find and check the trainers this site offers; the broken ones are left out.

    Raises:
        TrainerNotFound: if a ``--trainer`` value is malformed or names twice.
    """
    site = SiteTrainers(site_trainer_names(settings.trainers))
    if data is not None:
        site.check(site_context(data, number))
    offered = ", ".join(sorted(site.factories)) or "none"
    logger.info("trainers: %s", offered)
    return site


def client_number(settings: ClientSettings) -> int:
    """Return the number that seeds this client's training randomness.

    A slice of a built-in data set uses its index; a CSV client a stable hash
    of its name, so two sites never shuffle their rows alike by accident.
    """
    if settings.data is None:
        return settings.partition[0]
    return zlib.crc32(settings.name.encode()) % 1_000_000 + 1


async def serve_client(runner: ClientRunner, description: str) -> None:
    """Serve the status page and keep the runner connected until cancelled.

    The status page is optional: if its port is taken (a second client on
    the host), it is served on a free port instead, with a warning.
    """
    status = web.AppRunner(create_status_app(runner, description), access_log=None)
    await status.setup()
    await _start_site(status, runner.settings.host, runner.settings.port)
    for address in status.addresses:
        logger.info("status page on http://%s:%d/", *address[:2])
    try:
        await runner.run()
    finally:
        await status.cleanup()


async def _start_site(status: web.AppRunner, host: str, port: int) -> None:
    """Listen on ``host:port``, or on a free port if that one is taken."""
    site = web.TCPSite(status, host, port)
    try:
        await site.start()
    except OSError as e:
        if e.errno != errno.EADDRINUSE:
            raise
        await site.stop()
        logger.warning(
            "status port %d is taken (%s): serving the status page on a free port",
            port,
            e.strerror,
        )
        await web.TCPSite(status, host, 0).start()


def run_client(
    settings: ClientSettings,
    rng: random.Random,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop,
) -> int:
    """Run a client process until SIGINT/SIGTERM; return the exit code.

    Raises:
        DataError: if the client's data cannot be loaded, or makes a hello
            too large for the coordinator (checked before dialling).
    """
    data, description = load_client_data(settings)
    logger.info("data: %s", description)
    number = client_number(settings)
    site = load_trainers(settings, data, number)
    trainer = (
        SlowTrainer(
            data, client_number=number, delay_s=settings.fit_delay_s, trainers=site
        )
        if settings.fit_delay_s
        else Trainer(data, client_number=number, trainers=site)
    )
    runner = ClientRunner(settings, trainer, rng)
    runner.state.exit_after_masked = settings.exit_after_masked

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        await serve_client(runner, description)

    try:
        with asyncio.Runner(loop_factory=loop_factory) as loop_runner:
            loop_runner.run(main())
    except asyncio.CancelledError:
        logger.info("client %s stopped", settings.name)
        return 0
    except ConnectionError as e:
        logger.error("%s", e)
        return 1
    return 0
