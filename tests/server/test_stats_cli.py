"""``fednet stats``: the merged table, per site, raw JSON, and refusals (exit 2)."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

import pytest

from fednet.admin.stats import format_report, stats_command
from fednet.cli import build_parser
from tests.server.conftest import AppFactory
from tests.server.test_stats_api import (
    ADMIN,
    JOIN,
    _connected,
    _csv_hello,
    _site_stats,
)

Capture = pytest.CaptureFixture[str]


def _args(server: str, **flags: Any) -> argparse.Namespace:
    options = {"admin_token": ADMIN, "ca_file": None, "sites": False, "json": False}
    return argparse.Namespace(server=server, **{**options, **flags})


async def _run(args: argparse.Namespace) -> int:
    code: int = await asyncio.to_thread(stats_command, args)
    return code


def test_the_parser_takes_the_flags_and_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--server defaults to FEDNET_API; --sites and --json are switches."""
    monkeypatch.setenv("FEDNET_API", "https://coordinator:5000")
    args = build_parser().parse_args(["stats", "--sites", "--admin-token", "t"])
    assert (args.server, args.admin_token, args.sites, args.json) == (
        "https://coordinator:5000",
        "t",
        True,
        False,
    )


async def test_the_merged_table_and_each_sites(
    make_client: AppFactory, capsys: Capture
) -> None:
    """One line per column; --sites adds a table per site; exclusions are named."""
    client = await make_client(admin_token=ADMIN, join_token=JOIN)
    server = str(client.make_url("/"))
    hellos = [
        _csv_hello("site-1", _site_stats(1, 40).to_dict()),
        _csv_hello("site-2", _site_stats(2, 60).to_dict()),
        _csv_hello("site-3", None),
    ]
    async with _connected(client, *hellos):
        assert await _run(_args(server)) == 0
        merged = capsys.readouterr().out.splitlines()
        assert await _run(_args(server, sites=True)) == 0
        per_site = capsys.readouterr().out.splitlines()
        assert await _run(_args(server, json=True)) == 0
        answer = json.loads(capsys.readouterr().out)

    assert merged[0] == "merged: 2 sites, 100 training rows"
    assert merged[1].split() == [
        "COLUMN", "KIND", "COUNT", "MISSING", "MEAN", "STD", "MEDIAN", "TOP",
        "CATEGORIES"
    ]  # fmt: skip
    age = merged[2].split()
    assert age[:4] == ["age", "numeric", str(answer["columns"][0]["count"]),
                       str(answer["columns"][0]["missing"])]  # fmt: skip
    assert float(age[4]) == pytest.approx(answer["columns"][0]["mean"], rel=1e-5)
    ward = merged[4]
    assert ward.split()[:2] == ["ward", "categorical"] and " - " in ward
    top = max(answer["columns"][2]["categories"].items(), key=lambda kv: kv[1])
    assert f"{top[0]} {top[1]}" in ward
    assert merged[-1].startswith("not counted: site-3: sent no statistics")
    suppressed = "counts below 10 suppressed"
    assert f"site site-1: 40 training rows, {suppressed}" in per_site
    assert f"site site-2: 60 training rows, {suppressed}" in per_site
    assert [s["name"] for s in answer["sites"]] == ["site-1", "site-2"]


async def test_refusals_exit_2_with_the_servers_error(
    make_client: AppFactory, capsys: Capture
) -> None:
    """No CSV client (409) and a wrong token (401): exit 2, the error on stderr."""
    client = await make_client(admin_token=ADMIN, join_token=JOIN)
    server = str(client.make_url("/"))
    assert await _run(_args(server)) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("fednet stats: HTTP 409: no CSV client")
    assert await _run(_args(server, admin_token="wrong")) == 2
    assert "admin token" in capsys.readouterr().err


def test_unreachable_server_exits_2(capsys: Capture) -> None:
    """Nothing listening: exit 2 with the address."""
    assert stats_command(_args("http://127.0.0.1:9")) == 2
    assert "cannot reach http://127.0.0.1:9" in capsys.readouterr().err


def test_many_categories_show_the_top_three() -> None:
    """The table names the three most frequent categories and how many others."""
    column = {
        "name": "city", "kind": "categorical", "count": 100, "missing": 0,
        "mean": None, "std": None,
        "categories": {"a": 10, "b": 40, "c": 30, "d": 20},
    }  # fmt: skip
    text = format_report({"columns": [column], "sites": [], "excluded": []})
    assert text.splitlines()[-1].endswith("b 40, c 30, d 20, +1 more")
