"""``fednet audit``: print the audit log of a coordinator, oldest of the page first."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import aiohttp

from fednet.admin.http import coordinator


def audit_command(args: argparse.Namespace) -> int:
    """Print the newest ``--limit`` entries, from ``--server`` or ``--state-dir``."""
    if not 1 <= args.limit <= 1000:
        print("fednet audit: --limit must be from 1 to 1000", file=sys.stderr)
        return 2
    if args.server:
        try:
            entries = asyncio.run(_fetch(args))
        except (aiohttp.ClientError, OSError) as e:
            print(f"fednet audit: cannot reach {args.server}: {e}", file=sys.stderr)
            return 2
        if entries is None:
            return 2
    elif not (args.state_dir / "fednet.sqlite3").is_file():
        print(f"fednet audit: no state in {args.state_dir}", file=sys.stderr)
        return 2
    else:
        entries = _read(args)
    for entry in reversed(entries):
        print(format_entry(entry))
    return 0


def format_entry(entry: dict[str, Any]) -> str:
    """Return an entry as one line: when, actor, action, target, outcome, from."""
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(entry["at"]))
    fields = [
        when,
        entry["actor"],
        entry["action"],
        entry.get("target") or "-",
        entry["outcome"],
        entry.get("remote") or "-",
    ]
    line = "  ".join(str(f) for f in fields)
    return f"{line}  {entry['detail']}" if entry.get("detail") else line


async def _fetch(args: argparse.Namespace) -> list[dict[str, Any]] | None:
    async with coordinator(args) as http:
        async with http.get("/api/audit", params={"limit": args.limit}) as resp:
            if resp.status != 200:
                text = (await resp.text())[:300]
                print(f"fednet audit: HTTP {resp.status}: {text}", file=sys.stderr)
                return None
            entries: list[dict[str, Any]] = await resp.json()
            return entries


def _read(args: argparse.Namespace) -> list[dict[str, Any]]:
    from fednet.server.audit import AuditLog
    from fednet.server.store import Store

    store = Store(args.state_dir)
    try:
        return [e.to_dict() for e in AuditLog(store).entries(limit=args.limit)]
    finally:
        store.close()
