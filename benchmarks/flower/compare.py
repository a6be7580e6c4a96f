"""The Flower side of ``fednet bench --flower``: set up Flower, run the harness.

``fednet bench`` loads this file by path from the source checkout given with
``--repo``; the installed package carries nothing of Flower.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

FLOWER_DIR = Path(__file__).resolve().parent
REPO_ROOT = FLOWER_DIR.parents[1]
FLOWER_PYTHON = REPO_ROOT / "benchmarks" / ".venv-flower" / "bin" / "python"


def run_flower(
    workloads: list[str], deployment: str, timeout_s: float
) -> dict[str, Any]:
    """Set up Flower's own venv if needed, run its harness, return its report.

    Args:
        workloads: workload names, as ``fednet bench`` ran them.
        deployment: workloads also run on Flower's deployment path, or ``all``.
        timeout_s: bound of each Flower run.

    Raises:
        subprocess.CalledProcessError: if the setup or the harness fails.
    """
    if not FLOWER_PYTHON.exists():
        subprocess.run(["bash", str(FLOWER_DIR / "setup.sh")], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "flower.json"
        subprocess.run(
            [
                sys.executable,
                str(FLOWER_DIR / "run_flower.py"),
                "--workloads",
                ",".join(workloads),
                "--deployment-workloads",
                deployment,
                "--json",
                str(out),
                "--timeout",
                str(timeout_s),
            ],
            check=True,
            cwd=REPO_ROOT,
        )
        report: dict[str, Any] = json.loads(out.read_text())
    return report
