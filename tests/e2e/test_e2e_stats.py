"""``fednet stats`` against a real coordinator and three CSV sites.

The sites hold breast_cancer cut three ways with label skew, blank cells and
one categorical column (``tests/learning/skewed.py``); the merged figures
``fednet stats --json`` prints are those of the pooled training rows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fednet.learning.datasets import load_csv
from tests.learning.skewed import CATEGORICAL, write_skewed_sites

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

LABEL = "diagnosis"
ADMIN, JOIN = "admin-" + "s" * 26, "join-" + "j" * 27


def _fednet(*args: str, cwd: Path, code: int = 0) -> subprocess.CompletedProcess[str]:
    """Run ``python -m fednet ARGS`` to the end; check its exit code."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDNET_")}
    done = subprocess.run(
        [sys.executable, "-m", "fednet", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=cwd,
    )
    assert done.returncode == code, f"fednet {args}:\n{done.stdout}{done.stderr}"
    return done


def test_fednet_stats_merges_the_sites_training_rows_exactly(
    cluster: Any, tmp_path: Path
) -> None:
    """Each numeric column's merged mean is the pooled nanmean (1e-9 relative)."""
    server = cluster.server("--admin-token", ADMIN, "--join-token", JOIN, token=ADMIN)
    admin = ("--server", server.http_url, "--admin-token", ADMIN)
    refused = _fednet("stats", *admin, cwd=tmp_path, code=2)
    assert "no CSV client is connected" in refused.stderr
    paths = write_skewed_sites(tmp_path, seed=1, categorical=True)
    procs = [
        cluster.client(
            server, p.stem, "--data", str(p), "--label-column", LABEL,
            "--join-token", JOIN,
        )  # fmt: skip
        for p in paths
    ]
    server.wait_for_clients(3, procs)

    answer = json.loads(_fednet("stats", *admin, "--json", cwd=tmp_path).stdout)

    train = [load_csv(p, LABEL).raw_train for p in paths]
    assert all(rows is not None for rows in train)
    pooled = np.vstack([rows for rows in train if rows is not None])
    assert answer["excluded"] == []
    assert [s["name"] for s in answer["sites"]] == [p.stem for p in paths]
    rows = [len(x) for x in train if x is not None]
    assert [s["rows"] for s in answer["sites"]] == rows
    names = [c["name"] for c in answer["columns"]]
    assert names == list(load_csv(paths[0], LABEL).feature_names)
    for j, column in enumerate(answer["columns"]):
        if column["name"] == CATEGORICAL:
            assert column["kind"] == "categorical" and column["mean"] is None
            assert set(column["categories"]) == {"low", "mid", "high"}
            continue
        values = pooled[:, j]
        assert column["kind"] == "numeric"
        assert column["count"] == np.count_nonzero(~np.isnan(values))
        assert column["missing"] == np.count_nonzero(np.isnan(values))
        np.testing.assert_allclose(column["mean"], np.nanmean(values), rtol=1e-9)
        np.testing.assert_allclose(column["std"], np.nanstd(values), rtol=1e-9)
    table = _fednet("stats", *admin, "--sites", cwd=tmp_path).stdout
    assert table.startswith(f"merged: 3 sites, {len(pooled)} training rows")
    assert all(f"site {p.stem}:" in table for p in paths)
