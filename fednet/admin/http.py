"""Talking to a live coordinator from the administration commands."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from fednet.exceptions import ConfigError
from fednet.tlsctx import client_ssl_context


class CommandError(Exception):
    """What a command tells the user before it exits with status 2."""


@asynccontextmanager
async def coordinator(args: argparse.Namespace) -> AsyncIterator[aiohttp.ClientSession]:
    """Open an HTTP session to ``args.server`` with its admin token and CA.

    Requests are paths on the server URL, an origin (``http.get("/api/sites")``);
    they carry ``Authorization: Bearer`` with ``--admin-token`` when given.
    """
    ssl_context = client_ssl_context(args.ca_file) if args.ca_file else True
    token = args.admin_token
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession(
        base_url=args.server.rstrip("/"),
        headers=headers,
        connector=aiohttp.TCPConnector(ssl=ssl_context),
        timeout=aiohttp.ClientTimeout(total=30),
    ) as http:
        yield http


def request_json(
    args: argparse.Namespace, method: str, path: str, body: Any = None
) -> Any:
    """Send one API request to ``--server``; return its JSON answer.

    Raises:
        CommandError: on a refusal (naming the admin token on 401), a bad
            ``--ca-file``, an unreachable server, or an answer that is not JSON.
    """

    async def call() -> Any:
        async with coordinator(args) as http:
            async with http.request(method, path, json=body) as resp:
                answer = await resp.json(content_type=None)
                if resp.status >= 400:
                    raise CommandError(_refusal(resp.status, answer))
                return answer

    try:
        return asyncio.run(call())
    except ConfigError as e:  # the --ca-file
        raise CommandError("; ".join(e.errors.values())) from None
    except (aiohttp.ClientError, OSError, TimeoutError) as e:
        raise CommandError(f"cannot reach {args.server}: {e}") from None
    except ValueError as e:  # not JSON: not a coordinator
        raise CommandError(f"{args.server} answered no JSON: {e}") from None


def _refusal(status: int, answer: Any) -> str:
    error = answer.get("error") if isinstance(answer, dict) else None
    if status == 401:
        return f"the coordinator wants the admin token (--admin-token): {error}"
    return f"HTTP {status}: {error or answer}"
