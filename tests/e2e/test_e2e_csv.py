"""Three organisations' CSV files, one table split three ways, trained together."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from fednet.learning.datasets import ClientData, load_csv
from fednet.learning.fedstats import merge_stats
from fednet.learning.preprocess import Preprocess
from tests.learning.skewed import CATEGORICAL, write_skewed_sites

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

LABEL = "diagnosis"
SITES = ("hospital-a", "hospital-b", "hospital-c")
RUN = {
    "task": "csv",
    "model": "logreg",
    "rounds": 20,
    "min_clients": 3,
    "local_epochs": 20,
    "batch_size": 8,
    "learning_rate": 0.05,
    "seed": 0,
}


def _write_csv(path: Path, header: list[str], x: np.ndarray, labels: list[str]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*header, LABEL])
        for row, label in zip(x, labels):
            writer.writerow([repr(float(v)) for v in row] + [label])


@pytest.fixture
def site_files(tmp_path: Path) -> list[Path]:
    """Split breast_cancer (string labels) into three shuffled CSV files."""
    bunch = load_breast_cancer()
    header = [str(n).replace(" ", "_") for n in bunch.feature_names]
    order = np.random.default_rng(7).permutation(len(bunch.target))
    paths = []
    for site, rows in zip(SITES, np.array_split(order, len(SITES))):
        path = tmp_path / f"{site}.csv"
        labels = [str(bunch.target_names[t]) for t in bunch.target[rows]]
        _write_csv(path, header, bunch.data[rows], labels)
        paths.append(path)
    return paths


def _centralised_accuracy(paths: list[Path]) -> float:
    """Train one logistic regression on the pooled train splits; score pooled val."""
    sites = [load_csv(p, LABEL, val_fraction=0.2, seed=0) for p in paths]
    assert len({s.classes for s in sites}) == 1

    def raw(site: ClientData, x: np.ndarray) -> np.ndarray:
        assert site.feature_scale is not None and site.feature_mean is not None
        return x.astype(np.float64) * site.feature_scale + site.feature_mean

    x_train = np.vstack([raw(s, s.x_train) for s in sites])
    x_val = np.vstack([raw(s, s.x_val) for s in sites])
    y_train = np.concatenate([s.y_train for s in sites])
    y_val = np.concatenate([s.y_val for s in sites])
    scaler = StandardScaler().fit(x_train)
    model = LogisticRegression(max_iter=2000).fit(scaler.transform(x_train), y_train)
    return float(model.score(scaler.transform(x_val), y_val))


def test_csv_clients_match_centralised_logistic_regression(
    cluster: Any, server: Any, site_files: list[Path], tmp_path: Path
) -> None:
    """Three CSV sites reach within 3 points of a pooled LogisticRegression."""
    procs = [
        cluster.client(server, site, "--data", str(path), "--label-column", LABEL)
        for site, path in zip(SITES, site_files)
    ]
    server.wait_for_clients(3, procs)

    run_id = server.api.launch(**RUN)
    run = server.wait_for_run(run_id)

    assert run["status"] == "finished", run["error"]
    assert run["schema"]["classes"] == ["benign", "malignant"]
    played = [r["server_round"] for r in run["rounds"]]
    assert played == list(range(1, RUN["rounds"] + 1))
    assert all(sorted(r["clients"]) == sorted(SITES) for r in run["rounds"])
    federated = run["rounds"][-1]["federated_accuracy"]
    centralised = _centralised_accuracy(site_files)
    assert federated >= centralised - 0.03, (federated, centralised)


def test_client_with_other_columns_is_refused_with_a_reason(
    cluster: Any, server: Any, site_files: list[Path], tmp_path: Path
) -> None:
    """A 4th CSV with other columns is not eligible, says why; the run finishes."""
    procs = [
        cluster.client(server, site, "--data", str(path), "--label-column", LABEL)
        for site, path in zip(SITES, site_files)
    ]
    odd = tmp_path / "bank-d.csv"
    text = site_files[0].read_text().replace("mean_radius", "radius_avg", 1)
    odd.write_text(text)
    procs.append(
        cluster.client(server, "bank-d", "--data", str(odd), "--label-column", LABEL)
    )
    server.wait_for_clients(4, procs)

    run_id = server.api.launch(**RUN)
    seen: dict[str, Any] | None = None
    while server.api.run(run_id)["status"] in ("queued", "running"):
        clients = {c["name"]: c for c in server.api.get("/api/clients")}
        if clients["bank-d"]["note"]:
            seen = clients
            break
        time.sleep(0.05)
    run = server.wait_for_run(run_id)

    assert seen is not None, "bank-d was never shown as refused while the run ran"
    assert seen["bank-d"]["eligible"] is False
    note = seen["bank-d"]["note"]
    assert "columns" in note and "mean_radius" in note and "radius_avg" in note, note
    assert all(seen[site]["eligible"] for site in SITES)
    assert run["status"] == "finished", run["error"]
    assert all("bank-d" not in r["clients"] for r in run["rounds"])
    assert all(sorted(r["clients"]) == sorted(SITES) for r in run["rounds"])


def test_label_skewed_sites_with_missing_cells_reach_the_pooled_model(
    cluster: Any, server: Any, tmp_path: Path
) -> None:
    """Dirichlet(0.3) label skew, 10% blank cells, a text column: within 2 points.

    The sites announce their statistics; the run standardises, fills missing
    cells and one-hot encodes the categorical column with the merged ones,
    stored with its schema. Pooled: one LogisticRegression on all the rows.
    """
    paths = write_skewed_sites(tmp_path, seed=1, categorical=True)
    names = [p.stem for p in paths]
    procs = [
        cluster.client(server, name, "--data", str(path), "--label-column", LABEL)
        for name, path in zip(names, paths)
    ]
    server.wait_for_clients(3, procs)

    run_id = server.api.launch(**RUN)
    run = server.wait_for_run(run_id)

    assert run["status"] == "finished", run["error"]
    preprocess = Preprocess.from_dict(run["schema"]["preprocess"])
    sites = [load_csv(p, LABEL) for p in paths]
    merged = merge_stats([s.stats for s in sites if s.stats is not None])
    categorical = [run["schema"]["feature_names"].index(CATEGORICAL)]
    assert run["schema"]["categorical"] == [CATEGORICAL]
    assert preprocess == Preprocess.from_stats(merged, False, categorical)
    federated = run["rounds"][-1]["federated_accuracy"]
    pooled = _pooled_accuracy(sites, preprocess)
    assert federated >= pooled - 0.02, (federated, pooled)


def _pooled_accuracy(sites: list[ClientData], pre: Preprocess) -> float:
    """One LogisticRegression on every site's train rows, scored on every val row."""
    classes = sorted({c for s in sites for c in s.classes})

    def labels(site: ClientData, y: np.ndarray) -> np.ndarray:
        return np.array([classes.index(site.classes[k]) for k in y])

    x_train = [pre.apply(s.raw_train, s.categories) for s in sites]
    x_val = [pre.apply(s.raw_val, s.categories) for s in sites]
    model = LogisticRegression(max_iter=5000).fit(
        np.vstack(x_train), np.concatenate([labels(s, s.y_train) for s in sites])
    )
    return float(
        model.score(
            np.vstack(x_val), np.concatenate([labels(s, s.y_val) for s in sites])
        )
    )
