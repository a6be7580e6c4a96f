"""What a run's driver waits for: enough clients, an input, or a phase's deadline."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from fednet.config import RunConfig
from fednet.machine import RunMachine
from fednet.server.registry import ClientConn, Registry
from fednet.typing import ClientId

logger = logging.getLogger(__name__)


class Waits:
    """The waits of one run's driver, woken by client inputs and registry changes.

    Args:
        registry: the connected clients.
    """

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self.changed = asyncio.Event()
        self._key: str | None = None
        self._deadline = 0.0

    def kick(self) -> None:
        """Wake the driver: an input changed the machine."""
        self.changed.set()

    async def for_candidates(
        self, config: RunConfig, serves: Callable[[ClientConn], bool]
    ) -> list[ClientConn]:
        """Return the connected clients of the run's task and trainer, enough of them.
        """
        while True:
            changed = self._registry.changed
            ready = [
                c for c in self._registry.connected()
                if c.hello.task == config.task and serves(c)
            ]
            if len(ready) >= config.min_clients:
                return ready
            await changed.wait()

    def eligible(self) -> list[ClientId]:
        """Return the eligible connected clients now."""
        return [c.client_id for c in self._registry.connected() if c.eligible]

    def capabilities(self, client_id: ClientId) -> tuple[str, ...]:
        """Return what a connected client announced it can do (its hello)."""
        conn = self._registry.get(client_id)
        return () if conn is None else conn.hello.capabilities

    async def for_clients(self, run_id: int, wanted: int) -> list[ClientId]:
        """Return the eligible connected clients once there are ``wanted``."""
        while True:
            changed = self._registry.changed
            eligible = self.eligible()
            if len(eligible) >= wanted:
                return eligible
            logger.info(
                "run: %d waits for clients (%d of %d connected)",
                run_id,
                len(eligible),
                wanted,
            )
            await changed.wait()

    async def for_input(self, machine: RunMachine) -> None:
        """Wait for an input, or tell the machine its wait timed out.

        The deadline starts when the machine begins a new wait (its key
        changes), not at each input.
        """
        wait = machine.wait
        if wait is None:
            await self.changed.wait()
            return
        if wait.key != self._key:
            self._key = wait.key
            self._deadline = time.monotonic() + wait.timeout_s
        try:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            # Not wait_for: on Python 3.11 it swallows a cancellation that
            # lands as the event is set, and the driver would never stop.
            async with asyncio.timeout(remaining):
                await self.changed.wait()
        except TimeoutError:
            logger.info("%s timed out after %.1f s", wait.key, wait.timeout_s)
            machine.timed_out()
