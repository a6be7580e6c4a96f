"""A regression table split across three sites: R² of the pooled model, predict."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score

from fednet.learning.datasets import ClientData, load_csv

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

LABEL = "progression"


def _write_sites(tmp_path: Path) -> list[Path]:
    """scikit-learn's diabetes table (442 rows, a numeric target) cut in three."""
    data = load_diabetes()
    order = np.random.default_rng(0).permutation(len(data.target))
    paths = []
    for i, rows in enumerate(np.array_split(order, 3), 1):
        path = tmp_path / f"clinic-{i}.csv"
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow([*data.feature_names, LABEL])
            writer.writerows(
                [*map(repr, data.data[j].tolist()), repr(float(data.target[j]))]
                for j in rows
            )
        paths.append(path)
    return paths


def _pooled_r2(sites: list[ClientData]) -> float:
    """R² on the sites' validation rows of one linear regression on their train rows."""
    def rows(split: str) -> tuple[np.ndarray, np.ndarray]:
        x = np.concatenate([getattr(s, f"raw_{split}") for s in sites])
        y = np.concatenate([getattr(s, f"targets_{split}") for s in sites])
        return x, y

    x_train, y_train = rows("train")
    x_val, y_val = rows("val")
    model = LinearRegression().fit(x_train, y_train)
    return float(r2_score(y_val, model.predict(x_val)))


def test_a_federated_linear_regression_reaches_the_pooled_r2(
    cluster: Any, server: Any, tmp_path: Path
) -> None:
    """problem=auto finds the numeric target; R² within 0.03; predict agrees."""
    paths = _write_sites(tmp_path)
    procs = [cluster.client(server, p.stem, "--data", str(p), "--label-column", LABEL)
             for p in paths]
    server.wait_for_clients(3, procs)
    run_id = server.api.launch(task="csv", model="logreg", rounds=15, min_clients=3,
                               local_epochs=2, batch_size=16, learning_rate=0.05)
    run = server.wait_for_run(run_id)
    assert run["status"] == "finished", run["error"]
    assert run["schema"]["problem"] == "regression", run["schema"]
    assert run["schema"]["classes"] == []
    last = run["rounds"][-1]
    assert set(last["metrics"]) == {"mse", "mae", "r2"}
    assert last["federated_accuracy"] is None
    sites = [load_csv(p, LABEL) for p in paths]
    pooled = _pooled_r2(sites)
    print(f"regression: federated R2 {last['metrics']['r2']:.4f}, pooled {pooled:.4f}")
    assert abs(last["metrics"]["r2"] - pooled) <= 0.03, (last["metrics"], pooled)
    assert all("val_r2" in m for m in last["client_metrics"].values())

    # the best bundle (by R²) scores the sites' validation rows as the run did
    status, body = server.api.request("GET", f"/api/runs/{run_id}/bundle?which=best")
    assert status == 200
    bundle = tmp_path / "best.zip"
    bundle.write_bytes(body)
    best = max(run["rounds"], key=lambda r: r["metrics"]["r2"])
    val = _validation_csv(sites, tmp_path / "val.csv")
    out = tmp_path / "predictions.csv"
    done = subprocess.run(
        [sys.executable, "-m", "fednet", "predict", str(bundle), str(val),
         "--label-column", LABEL, "--out", str(out), "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["server_round"] == best["server_round"]
    for name in ("mse", "mae", "r2"):
        assert report["metrics"][name] == pytest.approx(best["metrics"][name], rel=1e-9)
    lines = out.read_text().splitlines()
    assert lines[0] == "prediction" and len(lines) == 1 + report["rows"]


def test_a_classification_run_refuses_a_numeric_target_with_the_reason(
    cluster: Any, server: Any, tmp_path: Path
) -> None:
    """problem=classification: a numeric target with many values is refused."""
    paths = _write_sites(tmp_path)
    procs = [cluster.client(server, p.stem, "--data", str(p), "--label-column", LABEL)
             for p in paths[:2]]
    server.wait_for_clients(2, procs)
    run_id = server.api.launch(task="csv", problem="classification", rounds=1,
                               min_clients=2, round_timeout_s=5)
    run = server.wait_for_run(run_id)
    assert run["status"] == "failed"
    assert "regression target" in run["error"] and "set problem to regression" in (
        run["error"])


def _validation_csv(sites: list[ClientData], path: Path) -> Path:
    names = sites[0].feature_names
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*names, LABEL])
        for site in sites:
            assert site.raw_val is not None and site.targets_val is not None
            writer.writerows([*map(repr, row.tolist()), repr(float(y))]
                             for row, y in zip(site.raw_val, site.targets_val))
    return path
