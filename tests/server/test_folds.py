"""The fold runner: one fold at a time, large ones off the event loop."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np

from fednet.machine import Fold
from fednet.protocol import FitResult
from fednet.server.folds import OFFLOAD_BYTES, FoldRunner
from fednet.typing import ClientId, NDArrays


class _SlowAggregator:
    """Records overlapping adds and the threads they ran on."""

    def __init__(self) -> None:
        self.count = 0
        self.total_examples = 0
        self.active = 0
        self.overlaps = 0
        self.threads: list[str] = []

    def add(self, update: NDArrays, num_examples: int) -> None:
        self.active += 1
        self.overlaps += self.active > 1
        self.threads.append(threading.current_thread().name)
        time.sleep(0.05)
        self.count += 1
        self.active -= 1

    def result(self) -> NDArrays:
        return []


def _fold(aggregator: _SlowAggregator, client: str, nbytes: int) -> Fold:
    params: NDArrays = [np.zeros(nbytes // 4, np.float32)]
    return Fold(ClientId(client), FitResult(1, 1, 1, {}, params), aggregator)


async def test_large_folds_run_one_at_a_time_in_the_fold_thread() -> None:
    """Concurrent large updates never fold at once, and never on the loop."""
    agg, done = _SlowAggregator(), []
    runner = FoldRunner("fold-test", done.append)
    folds = [_fold(agg, f"c{i}", OFFLOAD_BYTES) for i in range(3)]
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while len(done) < 3:
            ticks += 1
            await asyncio.sleep(0.005)

    await asyncio.gather(*(runner.run(f) for f in folds), tick())
    runner.close()
    assert agg.count == 3 and agg.overlaps == 0 and done == folds
    assert all(name.startswith("fold-test") for name in agg.threads)
    assert ticks > 10  # the loop kept running while the thread folded


async def test_a_small_fold_waits_behind_a_large_one() -> None:
    """A small update arriving while a large one folds is queued, not run inline."""
    agg, done = _SlowAggregator(), []
    runner = FoldRunner("fold-test", done.append)
    large, small = _fold(agg, "big", OFFLOAD_BYTES), _fold(agg, "small", 8)
    await asyncio.gather(runner.run(large), runner.run(small))
    runner.close()
    assert agg.overlaps == 0 and done == [large, small]


async def test_a_cancelled_waiter_still_gets_its_fold_accounted() -> None:
    """Cancelling the caller does not lose the fold: done runs when it ends."""
    agg, done = _SlowAggregator(), []
    runner = FoldRunner("fold-test", done.append)
    fold = _fold(agg, "c", OFFLOAD_BYTES)
    task = asyncio.create_task(runner.run(fold))
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert done == [fold] and agg.count == 1
    runner.close()
