"""Untrusted JSON into typed values: field tables and their converters.

A table maps every field name of a dataclass to a converter, a function that
returns the field's value from an untrusted JSON value or raises
``ValueError`` saying why it cannot. :func:`check_table` runs at import next to
each table, so a field added without its converter stops the import instead
of failing inside a parse. :func:`load_object` decodes the JSON object of a
text frame.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from fednet.exceptions import ProtocolError

Convert = Callable[[Any], Any]
Fields = Mapping[str, Convert]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_TEXT = 4096
MAX_METRICS = 256
# fednet.learning.metrics.MAX_STAT_KEYS more for an evaluation's statistics.
MAX_EVAL_METRICS = MAX_METRICS + 4400
MAX_EXAMPLES = 10**9  # the most training examples a client may declare in hello


def parse_int64(text: str) -> int | None:
    """Return the integer ``text`` spells (a URL segment), or None if it is none.

    Ids are SQLite integers: a number outside int64 names nothing, like a
    word does, so callers answer 404 (or 400) instead of overflowing.
    """
    try:
        value = int(text)
    except ValueError:
        return None
    return value if INT64_MIN <= value <= INT64_MAX else None


def load_object(text: str, max_chars: int) -> dict[str, Any]:
    """Decode a JSON object from a text frame (NaN and Infinity are not JSON).

    Raises:
        ProtocolError: if the text is too long, not JSON, nested too deeply
            for the decoder, or not an object.
    """
    if len(text) > max_chars:
        raise ProtocolError(f"text frame of {len(text)} characters is too long")
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except ValueError as e:
        raise ProtocolError(f"text frame is not valid JSON: {e}") from None
    except RecursionError:
        raise ProtocolError("text frame is not valid JSON: nested too deeply") from None
    if not isinstance(obj, dict):
        raise ProtocolError("message must be a JSON object")
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def check_table(
    cls: type[Any], table: Iterable[str], exclude: Iterable[str] = ()
) -> None:
    """Check that ``table`` names exactly the dataclass fields of ``cls``.

    Args:
        cls: a dataclass.
        table: its field names with a converter.
        exclude: fields that do not travel as JSON (e.g. ``parameters``).

    Raises:
        TypeError: naming the fields without an entry and the entries without
            a field; like the errors of ``dataclasses``, it reports a bug in a
            class definition, not bad input.
    """
    names = {f.name for f in dataclasses.fields(cls)} - set(exclude)
    keys = set(table)
    if names != keys:
        raise TypeError(
            f"{cls.__name__}: fields without a converter {sorted(names - keys)},"
            f" converters without a field {sorted(keys - names)}"
        )


def build_fields(
    cls: type[Any], table: Fields, obj: Mapping[str, Any], where: str
) -> dict[str, Any]:
    """Convert the members of ``obj`` that ``table`` names into keyword arguments.

    A member ``obj`` lacks is left out when its field has a default; members
    the table does not name are ignored here (the caller decides about them).

    Args:
        cls: the dataclass the arguments are for.
        table: its converters.
        obj: the decoded JSON object.
        where: what ``obj`` is, for error messages (e.g. ``fit``).

    Raises:
        ProtocolError: ``"<where>: missing field 'x'"`` or
            ``"<where>: invalid x: <reason>"``.
    """
    optional = {
        f.name
        for f in dataclasses.fields(cls)
        if f.default is not dataclasses.MISSING
        or f.default_factory is not dataclasses.MISSING
    }
    kwargs: dict[str, Any] = {}
    for name, convert in table.items():
        if name not in obj:
            if name in optional:
                continue
            raise ProtocolError(f"{where}: missing field {name!r}")
        try:
            kwargs[name] = convert(obj[name])
        except ValueError as e:
            raise ProtocolError(f"{where}: invalid {name}: {e}") from None
        except ProtocolError as e:  # a nested object names its own field
            raise ProtocolError(f"{where}: {e}") from None
    return kwargs


def _show(value: Any) -> str:
    return f"{value!r:.80}"


def int_field(lo: int = INT64_MIN, hi: int = INT64_MAX) -> Convert:
    """Return a converter accepting integers (not booleans) in ``lo..hi``."""

    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be an integer, got {_show(value)}")
        if not lo <= value <= hi:
            bound = f"at least {lo}" if value < lo else f"at most {hi}"
            raise ValueError(f"must be {bound}, got {value}")
        return value

    return convert


def float_field(*, positive: bool = False) -> Convert:
    """Return a converter accepting finite numbers (as floats), optionally > 0."""

    def convert(value: Any) -> float:
        if isinstance(value, int) and not isinstance(value, bool):
            if INT64_MIN <= value <= INT64_MAX:
                value = float(value)
        if not isinstance(value, float) or not math.isfinite(value):
            raise ValueError(f"must be a finite number, got {_show(value)}")
        if positive and not value > 0:
            raise ValueError(f"must be greater than 0, got {value!r}")
        return value

    return convert


def bool_field(value: Any) -> bool:
    """Accept true or false (not 0 or 1)."""
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {_show(value)}")
    return value


def str_field(max_len: int = MAX_TEXT) -> Convert:
    """Return a converter accepting strings of at most ``max_len`` characters."""

    def convert(value: Any) -> str:
        if not isinstance(value, str) or len(value) > max_len:
            raise ValueError(
                f"must be a string of at most {max_len} characters, got {_show(value)}"
            )
        return value

    return convert


def str_tuple_field(max_items: int, max_len: int = MAX_TEXT) -> Convert:
    """Return a converter accepting a list of at most ``max_items`` strings."""
    item = str_field(max_len)

    def convert(value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or len(value) > max_items:
            raise ValueError(
                f"must be a list of at most {max_items} strings, got {_show(value)}"
            )
        for index, element in enumerate(value):
            try:
                item(element)
            except ValueError as e:
                raise ValueError(f"entry {index} {e}") from None
        return tuple(value)

    return convert


def tuples_field(*converters: Convert, most: int) -> Convert:
    """Return a converter accepting a list of at most ``most`` fixed-size lists.

    Each row is converted member by member into a tuple.
    """

    def convert(value: Any) -> tuple[tuple[Any, ...], ...]:
        if not isinstance(value, list) or len(value) > most:
            raise ValueError(f"must be a list of at most {most} entries")
        out: list[tuple[Any, ...]] = []
        for index, entry in enumerate(value):
            if not isinstance(entry, list) or len(entry) != len(converters):
                raise ValueError(f"entry {index} must be a list of {len(converters)}")
            try:
                out.append(tuple(c(v) for c, v in zip(converters, entry)))
            except ValueError as e:
                raise ValueError(f"entry {index}: {e}") from None
        return tuple(out)

    return convert


def optional_field(convert: Convert) -> Convert:
    """Return a converter accepting null (as None) or what ``convert`` accepts."""

    def optional(value: Any) -> Any:
        return None if value is None else convert(value)

    return optional


def object_field(value: Any) -> dict[str, Any]:
    """Accept any JSON object (its members are checked by whoever reads them)."""
    if not isinstance(value, dict):
        raise ValueError(f"must be a JSON object, got {_show(value)}")
    return value


def metrics_field(value: Any, limit: int = MAX_METRICS) -> dict[str, float]:
    """Accept an object of at most ``limit`` named finite numbers, as floats."""
    name, number = str_field(), float_field()
    if not isinstance(value, dict) or len(value) > limit:
        raise ValueError(
            f"must be an object of at most {limit} numbers, got {_show(value)}"
        )
    try:
        return {name(k): number(v) for k, v in value.items()}
    except ValueError as e:
        raise ValueError(f"must map names to numbers: {e}") from None


def eval_metrics_field(value: Any) -> dict[str, float]:
    """Accept an evaluation's metrics: up to 256 plus its summable statistics."""
    return metrics_field(value, MAX_EVAL_METRICS)


INT = int_field()
FLOAT = float_field()
TEXT = str_field()
OPTIONAL_INT = optional_field(INT)
