"""Label-skewed CSV sites with missing cells, cut from breast_cancer."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer

from fednet.learning.partition import dirichlet_partition

CATEGORICAL = "worst_concave_points"
"""The column ``categorical=True`` turns into text: low, mid or high tertile."""


def write_skewed_sites(
    tmp_path: Path,
    seed: int,
    alpha: float = 0.3,
    blank: float = 0.1,
    categorical: bool = False,
) -> list[Path]:
    """Split breast_cancer three ways by Dirichlet(alpha) labels, blanking cells."""
    bunch = load_breast_cancer()
    rng = np.random.default_rng(seed)
    header = [str(n).replace(" ", "_") for n in bunch.feature_names]
    cells = np.array([[repr(float(v)) for v in row] for row in bunch.data])
    if categorical:
        j = header.index(CATEGORICAL)
        cuts = np.quantile(bunch.data[:, j], [1 / 3, 2 / 3])
        cells[:, j] = np.array(["low", "mid", "high"])[
            np.searchsorted(cuts, bunch.data[:, j])
        ]
    cells[rng.random(cells.shape) < blank] = ""
    parts = dirichlet_partition(bunch.target, 3, alpha, seed, min_size=20)
    paths = []
    for i, rows in enumerate(parts, start=1):
        path = tmp_path / f"site-{i}.csv"
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow([*header, "diagnosis"])
            for row in rows:
                writer.writerow([*cells[row], bunch.target_names[bunch.target[row]]])
        paths.append(path)
    return paths
