"""Many lightweight synthetic clients in one process, for the scale benchmark.

Run as ``python -m fednet.bench.swarm --server ws://127.0.0.1:5000/ws
--clients 500 --first 1``: clients ``swarm-1`` .. ``swarm-500``, each with its
own WebSocket connection, answering fits with the synthetic update.
``--connecting K`` starts the next client only while fewer than K are still
connecting: thousands of simultaneous dials overflow the coordinator's listen
backlog, and the kernel's SYN retries (1 s, 3 s, 7 s, ...) would then be what
a connect time measures.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random

from fednet.client.runner import ClientRunner
from fednet.client.trainer import Trainer
from fednet.settings import ClientSettings
from fednet.runtime import new_event_loop, raise_fd_limit


async def run_swarm(
    server: str, clients: int, first: int, total: int, connecting: int = 0
) -> None:
    """Connect ``clients`` synthetic clients and serve until cancelled.

    Args:
        server: the coordinator's ``ws://`` URL.
        clients: how many clients this process runs.
        first: the number of the first (names are ``swarm-<number>``).
        total: how many clients all swarms run (the partitions' count).
        connecting: at most this many dial at once (0: a new one every 2 ms).
    """
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
    dialling: list[ClientRunner] = []
    for runner in runners:
        tasks.append(asyncio.create_task(runner.run()))
        if not connecting:
            await asyncio.sleep(0.002)  # spread the handshakes a little
            continue
        dialling.append(runner)
        while len(dialling) >= connecting:
            await asyncio.sleep(0.01)
            dialling = [r for r in dialling if r.state.client_id is None]
    await asyncio.gather(*tasks)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the swarm until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--first", type=int, default=1)
    parser.add_argument("--total", type=int, default=0)
    parser.add_argument("--connecting", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    raise_fd_limit()
    try:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runner.run(
                run_swarm(
                    args.server, args.clients, args.first, args.total, args.connecting
                )
            )
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
