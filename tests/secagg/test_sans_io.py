"""The secure-aggregation core does no I/O and reads no clock or environment."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "fednet" / "secagg"
FORBIDDEN = {"asyncio", "aiohttp", "socket", "os", "time", "random", "secrets"}


@pytest.mark.parametrize("module", sorted(p.name for p in PACKAGE.glob("*.py")))
def test_secagg_modules_import_no_io_clock_or_global_randomness(module: str) -> None:
    """Randomness is injected (rng_bytes, np.random.Generator), never imported."""
    tree = ast.parse((PACKAGE / module).read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    assert not names & FORBIDDEN
    assert len((PACKAGE / module).read_text().splitlines()) <= 300
