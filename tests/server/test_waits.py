"""The driver's waits: deadlines per wait, and cancellation that always lands."""

from __future__ import annotations

import asyncio

import pytest

from fednet.machine import Wait
from fednet.server.events import EventHub
from fednet.server.registry import Registry
from fednet.server.waits import Waits


class _Waiting:
    """A machine in a phase with a long deadline that never times out here."""

    wait = Wait("fit: round 1", 30.0)

    def timed_out(self) -> None:
        raise AssertionError("not expected to time out")


async def test_a_cancel_that_lands_as_an_input_arrives_still_stops_the_wait() -> None:
    """Input and shutdown in the same instant: the driver must see the cancel.

    ``asyncio.wait_for`` on Python 3.11 returns normally then, dropping the
    cancellation, and a run whose round was then replayed waited for clients
    for ever at shutdown.
    """
    waits = Waits(Registry(EventHub()))
    task = asyncio.create_task(waits.for_input(_Waiting()))  # type: ignore[arg-type]
    await asyncio.sleep(0.01)
    waits.kick()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
