"""The ``fednet`` subcommands: each turns parsed flags into settings and runs."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import random
import sys
from collections.abc import Callable

from fednet.config import RunConfig
from fednet.tlsctx import client_ssl_context, server_ssl_context, tls_failure
from fednet.settings import ClientSettings, ServerSettings

logger = logging.getLogger(__name__)

LISTEN_BACKLOG = 4096
"""Connections the kernel queues for the server (capped by ``net.core.somaxconn``).

aiohttp's default of 128 left clients of a fleet that dials at once, as after
a coordinator restart, waiting out their connect timeouts.
"""


def server_command(args: argparse.Namespace) -> int:
    """Run ``fednet server``: the coordinator, until interrupted."""
    from aiohttp import web

    from fednet.runtime import new_event_loop, raise_fd_limit
    from fednet.server.app import create_app

    settings = ServerSettings(
        host=args.host,
        port=args.port,
        state_dir=args.state_dir,
        join_token=args.join_token or None,
        admin_token=args.admin_token or None,
        heartbeat_s=args.heartbeat_s,
        send_timeout_s=args.send_timeout_s,
        max_message_bytes=args.max_message_mb << 20,
        resume=not args.no_resume,
        max_clients=args.max_clients,
        hello_timeout_s=args.hello_timeout_s,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_client_ca=args.tls_client_ca,
        viewer_token=args.viewer_token or None,
        insecure=args.insecure,
        test_secagg_swap_key=args.test_secagg_swap_key,
    )
    if missing := settings.exposure():
        if not settings.insecure:
            print(_exposure_message(settings, missing), file=sys.stderr)
            return 2
        logger.warning(
            "INSECURE: %s is reachable from other machines without %s (--insecure)",
            settings.host,
            " and ".join(missing),
        )
    ssl_context = None
    if settings.tls_cert is not None and settings.tls_key is not None:
        ssl_context = server_ssl_context(
            settings.tls_cert, settings.tls_key, settings.tls_client_ca
        )
    raise_fd_limit()
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        ssl_context=ssl_context,
        print=lambda msg: logger.info("%s", msg.strip()),
        access_log=None,
        backlog=LISTEN_BACKLOG,
        loop=new_event_loop(),
    )
    return 0


def _exposure_message(settings: ServerSettings, missing: list[str]) -> str:
    return (
        f"fednet server: refusing to serve {settings.host}, which other machines"
        f" can reach, without {' and '.join(missing)}.\n"
        "  Serve loopback only (--host 127.0.0.1), give what is missing"
        " (docs/security.md), or accept the risk with --insecure"
        " (FEDNET_INSECURE=1)."
    )


def client_command(args: argparse.Namespace) -> int:
    """Run ``fednet client``: join a coordinator with this site's data."""
    from fednet.client.main import run_client
    from fednet.runtime import new_event_loop

    settings = ClientSettings(
        server=args.server,
        name=args.name or _site_name(args.site_token) or os.uname().nodename,
        data=args.data,
        label_column=args.label_column,
        dataset=args.dataset,
        partition=args.partition,
        alpha=args.alpha,
        seed=args.seed,
        min_count=args.min_count,
        join_token=args.join_token or None,
        site_token=args.site_token or None,
        ca_file=args.ca_file,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        host=args.client_host,
        port=args.client_port,
        heartbeat_s=args.heartbeat_s,
        max_retries=args.max_retries,
        backoff_initial_s=args.backoff_initial_s,
        backoff_max_s=args.backoff_max_s,
        fit_delay_s=args.fit_delay_s,
        exit_after_masked=args.exit_after_masked,
        secagg_trust_coordinator=args.secagg_trust_coordinator,
        trainers=tuple(args.trainer) if args.trainer else args.trainer_env,
    )
    return run_client(settings, random.Random(), new_event_loop)


def _site_name(site_token: str | None) -> str | None:
    """Return the name a site credential (``NAME:SECRET``) is for, if one is given."""
    name, sep, _ = (site_token or "").partition(":")
    return name if sep and name else None


def run_command(args: argparse.Namespace) -> int:
    """Run ``fednet run``: launch a run on a coordinator and follow it."""
    import aiohttp

    from fednet.follow import follow_run, launch_run

    config = RunConfig(
        **{f.name: getattr(args, f.name) for f in dataclasses.fields(RunConfig)}
    )

    ssl_context = client_ssl_context(args.ca_file) if args.ca_file else None

    async def main() -> int:
        connector = aiohttp.TCPConnector(ssl=ssl_context or True)
        # Following reads the run too: with tokens set, reads need one.
        token = args.admin_token
        headers = {"Authorization": f"Bearer {token}"} if token else None
        async with aiohttp.ClientSession(connector=connector, headers=headers) as http:
            run_id = await launch_run(
                http, args.server.rstrip("/"), config.to_dict(), args.admin_token
            )
            if args.no_follow:
                print(run_id)
                return 0
            run = await follow_run(http, args.server.rstrip("/"), run_id)
            return 0 if run.status == "finished" else 1

    try:
        return asyncio.run(main())
    except (aiohttp.ClientError, OSError) as e:
        reason = tls_failure(e, presented_cert=False) or e
        print(f"fednet run: cannot reach {args.server}: {reason}", file=sys.stderr)
        return 2


def demo_command(args: argparse.Namespace) -> int:
    """Run ``fednet demo``: a coordinator and three clients on this machine."""
    from fednet.demo import run_demo

    return run_demo(args)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "server": server_command,
    "client": client_command,
    "run": run_command,
    "demo": demo_command,
}
