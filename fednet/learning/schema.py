"""Feature/label schema of a client's data, and how schemas of a run combine."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fednet.exceptions import SchemaError

logger = logging.getLogger(__name__)

MAX_FEATURES = 100_000
MAX_CLASSES = 10_000
MAX_LABEL_CLASSES = 20
"""A numeric label with more distinct values is a regression target only."""
_SHOWN = 10  # how many names an error message lists before eliding the rest


@dataclass(frozen=True)
class Schema:
    """Column names and class labels of a data set.

    The model's input columns follow ``feature_names`` (a run's preprocessing
    may widen a categorical column into several) and its output columns follow
    ``classes``; label ``k`` of a client means ``classes[k]``.

    ``numeric_label``: every label is a number, so the data can serve a
    regression run. ``classes`` is then empty when the labels are a
    regression target only (more than :data:`MAX_LABEL_CLASSES` values), as
    is a regression run's schema.

    Raises:
        SchemaError: if a name is not a non-empty string, a list is empty or
            too long, a name is repeated, or a categorical column is not a
            feature.
    """

    feature_names: tuple[str, ...]
    classes: tuple[str, ...]
    categorical: tuple[str, ...] = ()
    numeric_label: bool = False

    def __post_init__(self) -> None:
        _check_names("feature_names", self.feature_names, MAX_FEATURES)
        if self.classes or not self.numeric_label:
            _check_names("classes", self.classes, MAX_CLASSES)
        if not isinstance(self.numeric_label, bool):
            raise SchemaError("numeric_label must be true or false")
        names = set(self.feature_names)
        if not isinstance(self.categorical, tuple) or not all(
            isinstance(c, str) and c in names for c in self.categorical
        ):
            raise SchemaError("categorical columns must be among the feature names")

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form accepted by :meth:`from_dict`."""
        data: dict[str, Any] = {
            "feature_names": list(self.feature_names),
            "classes": list(self.classes),
        }
        if self.categorical:  # absent otherwise, as before categories existed
            data["categorical"] = list(self.categorical)
        if self.numeric_label:
            data["numeric_label"] = True
        return data

    @property
    def regression(self) -> bool:
        """Return whether this is a regression run's (or target's) schema."""
        return self.numeric_label and not self.classes

    @classmethod
    def from_dict(cls, data: Any) -> Schema:
        """Validate untrusted JSON and build a Schema (unknown keys are ignored).

        Raises:
            SchemaError: on a missing key, a wrong type, an empty or too long
                list, or a duplicated name.
        """
        if not isinstance(data, Mapping):
            raise SchemaError(f"schema must be an object, got {type(data).__name__}")
        values: dict[str, tuple[str, ...]] = {}
        for key in ("feature_names", "classes"):
            if key not in data:
                raise SchemaError(f"schema is missing {key!r}")
            items = data[key]
            if not isinstance(items, (list, tuple)):
                raise SchemaError(
                    f"schema {key} must be a list, got {type(items).__name__}"
                )
            values[key] = tuple(items)
        categorical = data.get("categorical", [])
        if not isinstance(categorical, list):
            raise SchemaError("schema categorical must be a list")
        return cls(
            feature_names=values["feature_names"],
            classes=values["classes"],
            categorical=tuple(categorical),
            numeric_label=data.get("numeric_label", False),
        )


def _check_names(field: str, names: Any, cap: int) -> None:
    if not isinstance(names, tuple):
        raise SchemaError(f"{field} must be a tuple, got {type(names).__name__}")
    if not names:
        raise SchemaError(f"{field} is empty")
    if len(names) > cap:
        raise SchemaError(f"{field} has {len(names)} entries, at most {cap} allowed")
    for name in names:
        if not isinstance(name, str) or not name:
            raise SchemaError(
                f"{field} entries must be non-empty strings, got {name!r}"
            )
    if len(set(names)) != len(names):
        counts = Counter(names)
        dups = sorted(n for n, c in counts.items() if c > 1)
        raise SchemaError(f"{field} has duplicates: {_show(dups)}")


def _show(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:_SHOWN])
    if len(names) > _SHOWN:
        shown += f", ... ({len(names) - _SHOWN} more)"
    return shown


def is_int(text: str) -> bool:
    """Return whether a label reads as an integer (``"03"`` does, ``"3.0"`` not)."""
    try:
        int(text)
    except ValueError:
        return False
    return True


def sort_labels(labels: Iterable[str]) -> tuple[str, ...]:
    """Return the distinct labels in canonical order.

    Numeric order when every label parses as an integer ("2" before "10"),
    string order otherwise. Every data source orders its classes this way, so
    a client holding all labels agrees with the merged schema of the run.
    """
    unique = set(labels)
    if unique and all(is_int(label) for label in unique):
        return tuple(sorted(unique, key=lambda label: (int(label), label)))
    return tuple(sorted(unique))


def describe_feature_difference(
    expected: Sequence[str], got: Sequence[str]
) -> str | None:
    """Say how the columns ``got`` differ from ``expected``, or None if equal."""
    if tuple(expected) == tuple(got):
        return None
    expected_set, got_set = set(expected), set(got)
    missing = [name for name in expected if name not in got_set]
    extra = [name for name in got if name not in expected_set]
    parts = []
    if missing:
        parts.append(f"missing columns {_show(missing)}")
    if extra:
        parts.append(f"unexpected columns {_show(extra)}")
    if parts:
        return "; ".join(parts)
    pos = next((i for i, (a, b) in enumerate(zip(expected, got)) if a != b), None)
    if pos is None:
        return f"{len(got)} columns, expected {len(expected)}"
    return (
        f"same columns in a different order (column {pos + 1} is {got[pos]!r},"
        f" expected {expected[pos]!r})"
    )


def describe_kind_difference(expected: Schema, got: Schema) -> str | None:
    """Say which shared column is categorical in one schema only, or None."""
    if set(expected.categorical) == set(got.categorical):
        return None
    for name in expected.feature_names:
        if (name in expected.categorical) != (name in got.categorical):
            kinds = ("numeric", "categorical")
            if name in got.categorical:
                kinds = kinds[::-1]
            return f"column {name!r} is {kinds[0]}, expected {kinds[1]}"
    return "categorical columns differ"


def merge_schemas(schemas: Sequence[Schema]) -> Schema:
    """Combine the schemas of a run's clients into the run's schema.

    Clients must share the feature columns (same names, same order). Classes
    are the union in canonical order (see :func:`sort_labels`): a client
    with label-skewed data may hold only some of the labels.

    Raises:
        SchemaError: if no schema is given or two clients' features differ;
            the message names the differing columns.
    """
    if not schemas:
        raise SchemaError("no client schemas to merge")
    first = schemas[0]
    for number, schema in enumerate(schemas[1:], start=2):
        diff = describe_feature_difference(first.feature_names, schema.feature_names)
        if diff is not None:
            raise SchemaError(
                f"features of client {number} differ from client 1: {diff}"
            )
    for number, schema in enumerate(schemas[1:], start=2):
        kinds = describe_kind_difference(first, schema)
        if kinds is not None:
            raise SchemaError(
                f"features of client {number} differ from client 1: {kinds}"
            )
    classes = sort_labels(label for schema in schemas for label in schema.classes)
    logger.debug(
        "merged %d schemas: %d features, %d classes",
        len(schemas),
        len(first.feature_names),
        len(classes),
    )
    numeric = all(schema.numeric_label for schema in schemas)
    return Schema(first.feature_names, classes, first.categorical, numeric)


def check_schema(run: Schema, client: Schema) -> None:
    """Check that a client's data fits a run.

    Raises:
        SchemaError: if the client's features differ from the run's, the
            client holds a label that is not one of the run's classes, or its
            labels cannot serve the run's problem.
    """
    diff = describe_feature_difference(run.feature_names, client.feature_names)
    if diff is None:
        diff = describe_kind_difference(run, client)
    if diff is not None:
        raise SchemaError(f"client features do not match the run: {diff}")
    if run.regression:
        if not client.numeric_label:
            raise SchemaError("the run is a regression and the client's labels are"
                              " not all numbers")
        return
    if not client.classes:
        raise SchemaError("the client's label is a regression target (numbers of"
                          f" more than {MAX_LABEL_CLASSES} values) and the run"
                          " classifies")
    run_classes = set(run.classes)
    unknown = [label for label in client.classes if label not in run_classes]
    if unknown:
        raise SchemaError(
            f"client labels {_show(unknown)} are not among the run's classes"
            f" ({_show(run.classes)})"
        )
