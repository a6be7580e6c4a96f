"""Log formatting: text lines for people, JSON lines for containers and shippers.

Both keep one record on one line, whatever a client put in a name, a task or
an error message: the JSON formatter escapes like any JSON string, the text
formatter escapes control characters (a forged ``\\n2026-01-01 ... INFO``
cannot start a line of its own).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
TRACE_INDENT = "    "


def _escapes() -> dict[int, str]:
    """Return a ``str.translate`` table escaping every line-breaking character.

    C0 controls but tab, DEL, C1 controls (NEL, CSI, ...) and the Unicode line
    and paragraph separators: everything a terminal or ``str.splitlines``
    takes for a line break or the start of an escape sequence.
    """
    named = {0x0A: "\\n", 0x0D: "\\r"}
    codes = [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]
    return {
        c: named.get(c, f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}")
        for c in codes
        if c != 0x09
    }


_ESCAPES = _escapes()


def one_line(text: str) -> str:
    """Return ``text`` with its control characters escaped, as one line."""
    return text.translate(_ESCAPES)


class TextFormatter(logging.Formatter):
    """Format records as ``TEXT_FORMAT`` lines, one per record, escaped.

    The line (with the message's arguments, often client-supplied strings) is
    escaped onto one line. A traceback or stack follows on lines of its own,
    each escaped and indented, so no continuation line can pass for a record.
    """

    def __init__(self, fmt: str = TEXT_FORMAT) -> None:
        super().__init__(fmt)

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as one escaped line, plus any indented traceback."""
        record.message = record.getMessage()
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        text = one_line(self.formatMessage(record))
        # exc_text may be another formatter's cache: escaped here all the same.
        if record.exc_info:
            text += "\n" + _indent(self.formatException(record.exc_info))
        elif record.exc_text:
            text += "\n" + _indent(record.exc_text)
        if record.stack_info:
            text += "\n" + _indent(self.formatStack(record.stack_info))
        return text


def _indent(text: str) -> str:
    return "\n".join(TRACE_INDENT + one_line(line) for line in text.split("\n"))


class JsonFormatter(logging.Formatter):
    """Format records as JSON with time, level, logger, message and extras."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as one line of JSON."""
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
