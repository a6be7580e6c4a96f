"""The house rules that keep the core small and testable hold for the whole tree."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = [
    "fednet/protocol.py",
    "fednet/params.py",
    "fednet/fields.py",
    "fednet/fitconfig.py",
    "fednet/reader.py",
    "fednet/buffers.py",
    "fednet/machine.py",
    "fednet/phased.py",
    "fednet/tally.py",
    "fednet/views.py",
    "fednet/aggregation.py",
    "fednet/rounds.py",
    "fednet/buffered.py",
    "fednet/fedbuff.py",
    "fednet/roster.py",
    "fednet/versions.py",
    "fednet/gossip.py",
    "fednet/gossiping.py",
    "fednet/replicas.py",
    "fednet/records.py",
    "fednet/strategies.py",
    "fednet/client/trainer.py",
    "fednet/secround.py",
    "fednet/securemachine.py",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "fednet/secagg").glob("*.py")),
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "fednet/learning").glob("*.py")),
]
FORBIDDEN = {"asyncio", "aiohttp", "socket", "os", "time"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("module", CORE)
def test_core_modules_do_no_io_and_read_no_clock(module: str) -> None:
    """The sans-I/O core imports neither asyncio, aiohttp, sockets, os nor time."""
    assert not _imports(ROOT / module) & FORBIDDEN


def test_modules_stay_small() -> None:
    """No module of the package grows past 300 lines (one concept each)."""
    sizes = {
        str(p.relative_to(ROOT)): len(p.read_text().splitlines())
        for p in (ROOT / "fednet").rglob("*.py")
    }
    assert {name: n for name, n in sizes.items() if n > 300} == {}


def test_mypy_strict_passes() -> None:
    """`mypy --strict` (configured in setup.cfg) finds nothing in fednet/."""
    proc = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_flake8_passes() -> None:
    """flake8 (88 columns) finds nothing in the package, tests, deploy or benchmarks."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "flake8",
            "fednet",
            "tests",
            "deploy",
            "benchmarks/flower",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
