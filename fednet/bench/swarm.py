"""Many lightweight synthetic clients in one process, for the scale benchmark.

Run as ``python -m fednet.bench.swarm --server ws://127.0.0.1:5000/ws
--clients 500 --first 1``: clients ``swarm-1`` .. ``swarm-500``, each with its
own WebSocket connection, answering fits with the synthetic update.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random

from fednet.client.runner import ClientRunner
from fednet.client.trainer import Trainer
from fednet.config import ClientSettings
from fednet.runtime import new_event_loop, raise_fd_limit


async def run_swarm(server: str, clients: int, first: int, total: int) -> None:
    """Connect ``clients`` synthetic clients and serve until cancelled."""
    runners = []
    for number in range(first, first + clients):
        settings = ClientSettings(
            server=server,
            name=f"swarm-{number}",
            dataset="synthetic",
            partition=(number, max(total, number)),
            backoff_initial_s=1.0,
        )
        trainer = Trainer(None, client_number=number)
        runners.append(ClientRunner(settings, trainer, random.Random(number)))
    tasks = []
    for runner in runners:
        tasks.append(asyncio.create_task(runner.run()))
        await asyncio.sleep(0.002)  # spread the handshakes a little
    await asyncio.gather(*tasks)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the swarm until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--first", type=int, default=1)
    parser.add_argument("--total", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    raise_fd_limit()
    try:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runner.run(run_swarm(args.server, args.clients, args.first, args.total))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
