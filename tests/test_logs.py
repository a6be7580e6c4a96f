"""Log lines: client-supplied strings cannot forge records in text or JSON logs."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import pytest

from fednet import cli
from fednet.logs import JsonFormatter, TextFormatter

FORGED = "\n2026-01-01 00:00:00 INFO fake: admin logged in"


def _record(msg: str, *args: object, exc_info: Any = None) -> logging.LogRecord:
    return logging.LogRecord(
        "fednet.server.session", logging.WARNING, __file__, 1, msg, args, exc_info
    )


def test_a_forged_line_in_a_client_string_stays_on_its_record_line() -> None:
    """A newline and a fake record in an argument are escaped onto one line."""
    line = TextFormatter().format(_record("client %s reports: %s", "a", FORGED))
    assert "\n" not in line
    assert line.endswith("reports: \\n2026-01-01 00:00:00 INFO fake: admin logged in")


def test_terminal_escapes_and_unicode_line_breaks_are_escaped() -> None:
    """ESC, CR, a C1 control and U+2028 come out as visible escapes; tab stays."""
    line = TextFormatter().format(_record("task %s", "a\x1b[2J\r\x85\u2028\tb"))
    assert line.endswith("task a\\x1b[2J\\r\\x85\\u2028\tb")
    assert len(line.splitlines()) == 1


def test_a_traceback_follows_on_indented_escaped_lines() -> None:
    """Every traceback line is indented, so none can pass for a record."""
    try:
        raise ValueError("bad" + FORGED)
    except ValueError:
        record = _record("run %d crashed", 1, exc_info=sys.exc_info())
    first, *trace = TextFormatter().format(record).split("\n")
    assert first.endswith("run 1 crashed")
    assert trace and all(line.startswith("    ") for line in trace)
    assert trace[-1] == "    2026-01-01 00:00:00 INFO fake: admin logged in"


def test_json_lines_keep_a_forged_line_inside_the_message() -> None:
    """The JSON formatter writes one line whose message holds the newline."""
    line = JsonFormatter().format(_record("client %s reports", FORGED))
    assert "\n" not in line
    assert json.loads(line)["message"] == f"client {FORGED} reports"


@pytest.mark.parametrize(
    "fmt, formatter", [("text", TextFormatter), ("json", JsonFormatter)]
)
def test_configure_logging_installs_an_escaping_formatter(
    monkeypatch: pytest.MonkeyPatch, fmt: str, formatter: type[logging.Formatter]
) -> None:
    """`--log-format text` logs through TextFormatter, `json` through JsonFormatter."""
    handlers: list[logging.Handler] = []
    monkeypatch.setattr(
        logging, "basicConfig", lambda **kwargs: handlers.extend(kwargs["handlers"])
    )
    access = logging.getLogger("aiohttp.access")
    level = access.level
    try:
        cli.configure_logging("info", fmt)
    finally:
        access.setLevel(level)
    assert [type(h.formatter) for h in handlers] == [formatter]
