"""``fednet sites add|list|revoke``: site credentials, on a live coordinator or offline.

With ``--server`` a command goes through the coordinator's API (admin
token); without it, it opens the store in ``--state-dir`` directly, which
works while a coordinator runs on it (SQLite WAL), and audits as ``cli``.
A coordinator notices an offline revocation within one heartbeat.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import quote

from fednet.admin.http import CommandError, request_json
from fednet.server.audit import AuditLog
from fednet.server.sites import Site, SiteBook, SiteError
from fednet.server.store import Store

T = TypeVar("T")


def add_command(args: argparse.Namespace) -> int:
    """Create a site and print its credential once (on stdout, alone)."""
    return _main(args, lambda: _add(args))


def list_command(args: argparse.Namespace) -> int:
    """Print the registered sites as a table."""
    return _main(args, lambda: _list(args))


def revoke_command(args: argparse.Namespace) -> int:
    """Revoke a site: its client is disconnected and refused from now on."""
    return _main(args, lambda: _revoke(args))


def _main(args: argparse.Namespace, command: Callable[[], None]) -> int:
    try:
        command()
    except CommandError as e:
        print(f"fednet sites {args.action}: {e}", file=sys.stderr)
        return 2
    return 0


def _add(args: argparse.Namespace) -> None:
    if args.server:
        answer = request_json(args, "POST", "/api/sites", {"name": args.name})
        credential = str(answer["credential"])
    else:
        credential = _offline(
            args, lambda book: book.add(args.name, time.time()), "site.add"
        )
    print(credential)
    print(
        f"Site {args.name!r} added. Its credential, above, is shown only this once:"
        " hand it to the site over a private channel. The site joins with\n"
        f"  FEDNET_SITE_TOKEN='{credential}' fednet client --server URL ...\n"
        f"(or --site-token); its client name defaults to {args.name!r}.",
        file=sys.stderr,
    )


def _list(args: argparse.Namespace) -> None:
    if args.server:
        rows = request_json(args, "GET", "/api/sites", None)
        sites = [Site(r["name"], r["created_at"], r["revoked_at"]) for r in rows]
    else:
        sites = _offline(args, lambda book: book.list())
    if not sites:
        print("no sites registered")
        return
    width = max(len("NAME"), *(len(s.name) for s in sites))
    print(f"{'NAME':<{width}}  STATUS   CREATED (UTC)        REVOKED (UTC)")
    for site in sites:
        status = "revoked" if site.revoked else "active"
        revoked = _when(site.revoked_at) if site.revoked_at is not None else "-"
        print(f"{site.name:<{width}}  {status:<7}  {_when(site.created_at)}  {revoked}")


def _revoke(args: argparse.Namespace) -> None:
    if args.server:
        path = f"/api/sites/{quote(args.name, safe='')}/revoke"
        request_json(args, "POST", path, {})  # a JSON body: what a write must carry
        print(
            f"site {args.name!r} revoked: its connection, if any, is closed, and"
            " it is refused from now on"
        )
        return
    _offline(args, lambda book: book.revoke(args.name, time.time()), "site.revoke")
    print(
        f"site {args.name!r} revoked: a coordinator running on {args.state_dir}"
        " closes its connection within one heartbeat, and refuses it from now on"
    )


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at))


def _open_store(args: argparse.Namespace) -> Store:
    """Open the state dir's store; only ``add`` may create a new state dir."""
    if args.action != "add" and not (args.state_dir / "fednet.sqlite3").exists():
        raise CommandError(
            f"no coordinator state in {args.state_dir} (give --state-dir,"
            " or --server URL for a live coordinator)"
        )
    try:
        return Store(args.state_dir)
    except (OSError, sqlite3.Error) as e:
        raise CommandError(f"cannot open the state in {args.state_dir}: {e}") from None


def _offline(
    args: argparse.Namespace,
    action: Callable[[SiteBook], T],
    audited: str | None = None,
) -> T:
    """Do ``action`` on the state dir's sites; audit it as ``cli`` if it is a change."""
    store = _open_store(args)
    try:
        result = action(SiteBook(store))
        if audited is not None:
            audit = AuditLog(store)
            audit.record("cli", audited, target=args.name)
            audit.write_pending()
        return result
    except SiteError as e:
        raise CommandError(str(e)) from None
    except sqlite3.Error as e:
        raise CommandError(f"the state in {args.state_dir}: {e}") from None
    finally:
        store.close()
