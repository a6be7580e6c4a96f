"""Shared hypothesis settings and JSON strategies of the parser fuzz tests."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# 10,000 cases per parser; no example database, so no .hypothesis/ folder.
FUZZ = settings(
    max_examples=10_000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Integers past int64 and past float's range, to reach overflows.
HUGE_INTS = st.integers(min_value=2**63 - 2, max_value=10**400) | st.integers(
    min_value=-(10**400), max_value=-(2**63) - 1
)
SCALARS: st.SearchStrategy[Any] = (
    st.none()
    | st.booleans()
    | st.integers()
    | HUGE_INTS
    | st.floats()
    | st.text(max_size=12)
)
SHORT_KEYS = st.text(max_size=8)


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Nested JSON values: scalars in lists and objects (NaN and big ints too)."""
    return st.recursive(
        SCALARS,
        lambda inner: st.lists(inner, max_size=4)
        | st.dictionaries(SHORT_KEYS, inner, max_size=4),
        max_leaves=max_leaves,
    )


FIELD_VALUES: st.SearchStrategy[Any] = (
    st.integers(min_value=-1, max_value=4)
    | st.text(max_size=6)
    | st.lists(st.text(max_size=3), max_size=3)
    | SCALARS
    | st.lists(SCALARS, max_size=3)
    | st.dictionaries(SHORT_KEYS, SCALARS, max_size=3)
)


def objects_with(
    names: list[str], values: st.SearchStrategy[Any] | None = None
) -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects whose keys are mostly ``names`` (real fields), a few others."""
    keys = st.sampled_from(names) | SHORT_KEYS if names else SHORT_KEYS
    return st.dictionaries(keys, values or FIELD_VALUES, max_size=5)
