"""Run a machine's Folds one at a time: small ones inline, large ones in a thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from fednet.machine import Fold

# Updates at least this large are folded in the fold thread (numpy releases
# the GIL), so the event loop keeps reading other uploads meanwhile.
OFFLOAD_BYTES = 1 << 20


class FoldRunner:
    """Validate and fold updates of one run, never two at once.

    Folds share the round's aggregate, so they run in order on one thread;
    a small one runs inline only when the thread is idle.

    Args:
        name: names the thread (e.g. ``fold-3`` for run 3).
        done: called on the event loop after each Fold ran, even if the
            caller waiting for it was cancelled.
    """

    def __init__(self, name: str, done: Callable[[Fold], None]) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=name)
        self._done = done
        self._in_flight = 0

    async def run(self, fold: Fold) -> None:
        """Run a Fold; return once its arrays are no longer in use."""
        if fold.nbytes < OFFLOAD_BYTES and not self._in_flight:
            fold.run()
            self._done(fold)
            return
        self._in_flight += 1
        future = asyncio.get_running_loop().run_in_executor(self._executor, fold.run)
        future.add_done_callback(lambda _: self._finished(fold))
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            await asyncio.wait({future})  # the thread still reads the arrays
            raise

    def _finished(self, fold: Fold) -> None:
        self._in_flight -= 1
        self._done(fold)

    def close(self) -> None:
        """Let queued folds finish in the background; accept no more."""
        self._executor.shutdown(wait=False)
