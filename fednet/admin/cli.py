"""The parsers of ``fednet sites``, ``ca``, ``audit``, ``stats`` and ``predict``.

Each command is imported only when it runs, so ``fednet client`` never loads
what only an administrator needs.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any, Callable


def _lazy(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        return int(getattr(importlib.import_module(module), name)(args))

    return command


def _coordinator_flags(flags: Any) -> None:
    """Flags of commands that act on a coordinator, live or on its state dir."""
    flags.add(
        "--server",
        default=None,
        help="coordinator HTTP(S) URL (default: act on --state-dir offline)",
        env="FEDNET_API",
    )
    flags.add("--state-dir", type=Path, default=Path("state"), help="state folder")
    flags.add("--admin-token", help="admin token of the coordinator")
    flags.add("--ca-file", type=Path, help="CA bundle (PEM) to verify the coordinator")


def _sites_parser(sub: Any, common: Any) -> None:
    p = sub.add_parser("sites", help="add, list and revoke site credentials")
    actions = p.add_subparsers(dest="action", required=True)
    for action, text in (
        ("add", "create a site and print its credential once"),
        ("list", "list the sites"),
        ("revoke", "revoke a site: disconnected and refused from now on"),
    ):
        a = actions.add_parser(action, help=text)
        flags = common(a)
        _coordinator_flags(flags)
        if action != "list":
            a.add_argument("name", help="the site's name (its client --name)")
        a.set_defaults(func=_lazy("fednet.admin.sites", f"{action}_command"))


def _ca_parser(sub: Any, common: Any) -> None:
    p = sub.add_parser("ca", help="a small private CA for TLS and mutual TLS")
    actions = p.add_subparsers(dest="action", required=True)
    init = actions.add_parser("init", help="create the CA (ca.crt, ca.key) in DIR")
    common(init)
    init.add_argument("dir", type=Path, help="the CA's folder (created)")
    init.add_argument("--name", help='the CA\'s name (default: "fednet CA <DIR>")')
    init.set_defaults(func=_lazy("fednet.admin.ca", "init_command"))
    issue = actions.add_parser("issue", help="issue NAME.crt and NAME.key in DIR")
    common(issue)
    issue.add_argument("dir", type=Path, help="the CA's folder")
    issue.add_argument("name", help="a site name, or the coordinator's host name")
    issue.add_argument(
        "--san",
        action="append",
        default=[],
        help="another DNS name or IP address of the certificate (repeatable)",
    )
    issue.set_defaults(func=_lazy("fednet.admin.ca", "issue_command"))


def _audit_parser(sub: Any, common: Any) -> None:
    p = sub.add_parser("audit", help="print the audit log, newest last")
    flags = common(p)
    _coordinator_flags(flags)
    flags.add("--limit", type=int, default=100, help="entries to print")
    p.set_defaults(func=_lazy("fednet.admin.audit", "audit_command"))


def _stats_parser(sub: Any, common: Any) -> None:
    p = sub.add_parser("stats", help="print the connected CSV sites' merged statistics")
    flags = common(p)
    flags.add(
        "--server",
        default="http://localhost:5000",
        help="coordinator HTTP(S) URL",
        env="FEDNET_API",
    )
    flags.add("--admin-token", help="admin token of the coordinator")
    flags.add("--ca-file", type=Path, help="CA bundle (PEM) to verify the coordinator")
    flags.switch("--sites", help="also print each site's own figures")
    flags.switch("--json", help="print the server's JSON answer as it is")
    p.set_defaults(func=_lazy("fednet.admin.stats", "stats_command"))


def _predict_parser(sub: Any, common: Any) -> None:
    p = sub.add_parser("predict", help="predict a CSV file with a model bundle")
    flags = common(p)
    p.add_argument("bundle", type=Path, help="a bundle (GET /api/runs/N/bundle)")
    p.add_argument("data", type=Path, help="a CSV file with the model's columns")
    flags.add("--out", type=Path, help="write predictions here (CSV)")
    flags.add("--label-column", help="score the predictions against this column")
    flags.switch("--json", help="print the metrics as JSON")
    p.set_defaults(func=_lazy("fednet.admin.predict", "predict_command"))


def add_admin_parsers(sub: Any, common: Any) -> None:
    """Register the administration commands (and predict) on the subparsers."""
    _sites_parser(sub, common)
    _ca_parser(sub, common)
    _audit_parser(sub, common)
    _stats_parser(sub, common)
    _predict_parser(sub, common)
