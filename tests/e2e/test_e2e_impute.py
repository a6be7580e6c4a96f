"""Median imputation, missing indicators and min_count with real CSV sites."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fednet.learning.datasets import load_csv
from fednet.learning.fedstats import merge_stats
from fednet.learning.sketch import ALPHA, quantile
from tests.learning.skewed import write_skewed_sites

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

RUN = {
    "task": "csv",
    "model": "logreg",
    "rounds": 4,
    "min_clients": 4,
    "local_epochs": 5,
    "batch_size": 8,
    "learning_rate": 0.05,
    "impute": "median",
    "missing_indicator": True,
    "min_count": 10,
    "round_timeout_s": 60.0,
}
SKEWED = "area_error"  # right-skewed: its median is well below its mean


def test_missing_cells_take_the_median_of_the_merged_sketches(
    cluster: Any, server: Any, tmp_path: Path
) -> None:
    """The stored fill of every column is the merged histograms' median.

    Three sites suppress at 10 (the default) and count; a fourth suppressing
    at 3 (``--min-count 3``) trains but its summary is not used, the run's
    min_count being 10. Every column has blanks, so each gets an indicator.
    """
    paths = write_skewed_sites(tmp_path, seed=2)
    procs = [
        cluster.client(server, f"site-{i}", "--data", str(p), "--label-column",
                       "diagnosis")
        for i, p in enumerate(paths, start=1)
    ]
    procs.append(cluster.client(server, "site-lax", "--data", str(paths[2]),
                                "--label-column", "diagnosis", "--min-count", "3"))
    server.wait_for_clients(4, procs)

    run = server.wait_for_run(server.api.launch(**RUN))

    assert run["status"] == "finished", run["error"]
    pre = run["schema"]["preprocess"]
    sites = [load_csv(p, "diagnosis") for p in paths]
    parts = [s.stats for s in sites if s.stats is not None]
    merged = merge_stats(parts)
    names = run["schema"]["feature_names"]
    assert pre["fill"] == [quantile(merged.histograms[j], 0.5) for j in range(30)]
    assert pre["mean"] == merged.mean.tolist()  # the lax site did not count
    assert pre["indicators"] == list(range(30))
    j = names.index(SKEWED)
    pooled = np.vstack([s.raw_train for s in sites if s.raw_train is not None])
    median, mean = pre["fill"][j], pre["mean"][j]
    assert median < 0.8 * mean
    slack = 2 * 3 * 10 / merged.count[j]  # suppression's rank error (sketch.py)
    low, high = np.nanquantile(pooled[:, j], [0.5 - slack, 0.5 + slack])
    assert low * (1 - ALPHA) <= median <= high * (1 + ALPHA)
    assert [a.shape for a in server.api.model(run["id"])] == [(60, 2), (2,)]
    assert run["rounds"][-1]["federated_accuracy"] > 0.85
    log = server.process.output()
    assert "client site-lax suppresses counts below 3 only" in log
