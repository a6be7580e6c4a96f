"""Checks of single settings' values: each returns why a value is refused, or None.

RunConfig (:mod:`fednet.config`) and the server's settings share them.
"""

from __future__ import annotations

import re
from typing import Any, Callable

Check = Callable[[Any], "str | None"]


def int_range(lo: int, hi: int) -> Check:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be an integer, got {value!r}"
        if not lo <= value <= hi:
            return f"must be between {lo} and {hi}, got {value}"
        return None

    return check


def float_range(lo: float, hi: float, *, lo_open: bool = False) -> Check:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be a number, got {value!r}"
        if not lo <= value <= hi:  # also NaN and infinities; exact for any int
            return f"must be between {lo:g} and {hi:g}, got {value!r}"
        if lo_open and value <= lo:
            return f"must be greater than {lo:g}, got {value!r}"
        return None

    return check


def boolean(value: Any) -> str | None:
    if not isinstance(value, bool):
        return f"must be true or false, got {value!r}"
    return None


def choice(options: tuple[str, ...]) -> Check:
    def check(value: Any) -> str | None:
        if value not in options:
            return f"must be one of {', '.join(options)}, got {value!r}"
        return None

    return check


def text(limit: int) -> Callable[[Any], str | None]:
    """Return a check of a string of at most ``limit`` characters."""

    def check(value: Any) -> str | None:
        if not isinstance(value, str) or len(value) > limit:
            return f"must be text of at most {limit} characters, got {value!r:.80}"
        return None

    return check


def pattern(regex: re.Pattern[str], what: str) -> Check:
    """Return a check of a string that ``regex`` matches whole."""

    def check(value: Any) -> str | None:
        if not isinstance(value, str) or not regex.fullmatch(value):
            return f"must be {what}, got {value!r:.80}"
        return None

    return check
