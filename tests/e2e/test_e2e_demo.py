"""`fednet demo --exit-after`: the quick start's session, as a script runs it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.e2eutil import free_port


@pytest.mark.e2e
def test_demo_reaches_the_target_accuracy_and_exits(tmp_path: Path) -> None:
    """3 non-IID clients, 10 rounds: test accuracy >= 0.90, exit code 0."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fednet",
            "demo",
            "--exit-after",
            "--port",
            str(free_port()),
            "--state-dir",
            str(tmp_path / "demo"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = re.findall(r"^\s+(\d+)\s+3\s+\d+\s+[\d.]+\s+([\d.]+)", proc.stdout, re.M)
    assert [int(r) for r, _ in rows] == list(range(1, 11))
    assert float(rows[-1][1]) >= 0.90
    assert "reached the 0.90 target" in proc.stdout
    assert (tmp_path / "demo" / "logs" / "server.log").exists()
