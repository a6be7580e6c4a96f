"""benchmarks/secagg_rounds.py, quoted in docs/privacy.md, runs (no timing asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
@pytest.mark.parametrize("signed", [False, True])
def test_secagg_rounds_reports_both_runs(signed: bool) -> None:
    """Two sites, 1,000 parameters: rounds, peaks, CPU by process kind, error."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "secagg_rounds.py"),
         "--params", "1000", "--sites", "2", "--rounds", "2",
         *(["--signed"] if signed else [])],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert re.search(r"plain round +\d+\.\d+ s .*peak RSS \d+ MB", out), out
    assert re.search(r"secure round +\d+\.\d+ s +\(\d+\.\d+x\)", out), out
    for run in ("plain", "secure"):
        cpu = rf"CPU per round, {run} +\d+\.\d+ s: coordinator \d+\.\d+ s, sites \d"
        assert re.search(cpu, out), out
    error = re.search(r"secure vs plain model: max abs \S+, relative (\S+)", out)
    assert error is not None and float(error.group(1)) <= 1e-6, out
    assert out.startswith("P=1000 N=2 rounds=2" + (" signed" if signed else "")), out
