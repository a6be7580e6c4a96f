"""The process runtime: an event loop factory and the open-files limit."""

from __future__ import annotations

import asyncio
import resource

from fednet.runtime import new_event_loop, raise_fd_limit


def test_new_event_loop_runs_coroutines() -> None:
    """The loop (uvloop or asyncio's) runs a coroutine to completion."""

    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        assert runner.run(answer()) == 42


def test_raise_fd_limit_lifts_the_soft_limit_to_the_hard_one() -> None:
    """After the call the soft open-files limit equals the returned hard limit."""
    hard = raise_fd_limit()
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
