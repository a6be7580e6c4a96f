"""Talking to a live coordinator from the administration commands."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp

from fednet.tlsctx import client_ssl_context


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
