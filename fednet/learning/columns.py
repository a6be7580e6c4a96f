"""Decide whether a CSV feature column is numeric or categorical, and read it.

A column whose present cells are all numbers is numeric. One whose cells are
mostly text is categorical: each distinct text is a category, coded as its
index in the sorted list of the column's categories. A column of numbers with
a few text cells is neither: it is read as a numeric column with typos, and
the first of them is an error, so a slip in one cell never silently turns a
measurement into a category.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})
"""Cells (stripped, any case) that mark a missing feature value."""
NUMERIC_SHARE = 0.9
"""A column with at least this share of numbers among its present cells is numeric."""
MAX_CATEGORIES = 1000
MAX_CATEGORY_CHARS = 100


class CellError(ValueError):
    """A cell the column cannot hold: ``row`` (0-based data row) and ``problem``."""

    def __init__(self, row: int, problem: str) -> None:
        super().__init__(problem)
        self.row = row
        self.problem = problem


@dataclass(frozen=True, eq=False)
class Column:
    """A feature column as read: numbers, or category codes, NaN where missing.

    Attributes:
        values: float64, one per row; a categorical column holds codes.
        categories: the categories in code order, or None for a numeric column.
    """

    values: npt.NDArray[np.float64]
    categories: tuple[str, ...] | None = None


def is_missing(cell: str) -> bool:
    """Return whether a stripped cell marks a missing value."""
    return cell.lower() in MISSING_TOKENS


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def read_column(cells: Sequence[str], categorical: bool | None = None) -> Column:
    """Read one column's stripped cells (see the module doc for the rules).

    Args:
        cells: the column's cells, stripped.
        categorical: the column's kind when it is known (a model's input);
            None decides from the cells.

    Raises:
        CellError: on an infinite number, a text cell in a column of numbers,
            or a categorical column with too many or too long categories.
    """
    if categorical:
        return _categorical(cells)
    numbers = [None if is_missing(c) else _number(c) for c in cells]
    present = sum(not is_missing(c) for c in cells)
    parsed = sum(n is not None for n in numbers)
    if categorical is False or parsed >= NUMERIC_SHARE * present:
        return _numeric(cells, numbers)
    return _categorical(cells)


def _numeric(cells: Sequence[str], numbers: Sequence[float | None]) -> Column:
    values = np.full(len(cells), np.nan)
    for row, (cell, number) in enumerate(zip(cells, numbers)):
        if number is None:
            if not is_missing(cell):
                raise CellError(row, f"non-numeric value {cell!r}")
        elif math.isinf(number):
            raise CellError(row, f"non-finite value {cell!r}")
        else:
            values[row] = number
    return Column(values)


def _categorical(cells: Sequence[str]) -> Column:
    seen: dict[str, int] = {}
    for row, cell in enumerate(cells):
        if is_missing(cell) or cell in seen:
            continue
        if len(cell) > MAX_CATEGORY_CHARS:
            raise CellError(
                row, f"category of {len(cell)} characters, at most {MAX_CATEGORY_CHARS}"
            )
        seen[cell] = row
        if len(seen) > MAX_CATEGORIES:
            raise CellError(
                row, f"more than {MAX_CATEGORIES} distinct values in a text column"
            )
    categories = tuple(sorted(seen))
    code = {name: float(k) for k, name in enumerate(categories)}
    values = np.array(
        [np.nan if is_missing(c) else code[c] for c in cells], dtype=np.float64
    )
    return Column(values, categories)
