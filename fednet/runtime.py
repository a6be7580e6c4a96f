"""What a fednet process sets up before it serves: its event loop and fd limit."""

from __future__ import annotations

import asyncio
import resource


def new_event_loop() -> asyncio.AbstractEventLoop:
    """Return a uvloop loop where uvloop is installed (faster sockets), else asyncio's.

    The loop is passed explicitly rather than through a global policy, so
    code that embeds fednet (tests included) keeps its own loops.
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def raise_fd_limit() -> int:
    """Raise the soft open-files limit to the hard limit; return it.

    A coordinator or a swarm holds one socket per client: the usual soft limit
    of 1024 stops a thousand clients short.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard
