"""A run's model as a bundle, and ``fednet predict`` reproducing its metrics."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from fednet.bundle import read_bundle
from fednet.learning.datasets import ClientData, load_csv
from tests.learning.skewed import write_skewed_sites

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

LABEL = "diagnosis"


def _predict(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "fednet", "predict", *args, "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def _bundle(server: Any, run_id: int, which: str, path: Path) -> Path:
    status, body = server.api.request("GET", f"/api/runs/{run_id}/bundle?which={which}")
    assert status == 200, body[:300]
    path.write_bytes(body)
    return path


def test_predict_on_the_test_split_gives_the_runs_test_accuracy(
    cluster: Any, server: Any, tmp_path: Path
) -> None:
    """digits: the last bundle scores the held-out split as the coordinator did."""
    cluster.digits_clients(server, 3)
    run_id = server.api.launch(task="digits", rounds=3, min_clients=3, seed=3)
    run = server.wait_for_run(run_id)
    assert run["status"] == "finished", run["error"]
    digits = load_digits()
    _, x_test, _, y_test = train_test_split(
        digits.data, digits.target, test_size=0.2, stratify=digits.target,
        random_state=0,
    )
    data = tmp_path / "test.csv"
    with open(data, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*digits.feature_names, "digit"])
        writer.writerows([*map(repr, row.tolist()), int(y)]
                         for row, y in zip(x_test, y_test))
    last = _bundle(server, run_id, "last", tmp_path / "last.zip")

    out = tmp_path / "predictions.csv"
    report = _predict(
        str(last), str(data), "--label-column", "digit", "--out", str(out)
    )

    assert report["accuracy"] == run["rounds"][-1]["test_accuracy"]
    test = run["rounds"][-1]["test_metrics"]
    for name in ("balanced_accuracy", "macro_f1", "auroc"):
        assert report["metrics"][name] == test[name]
    assert report["confusion"] == run["rounds"][-1]["confusion"]
    assert report["rows"] == len(y_test) and report["server_round"] == 3
    rows = list(csv.reader(out.read_text().splitlines()))
    assert rows[0][:2] == ["prediction", "probability_0"] and len(rows) == 361
    bundle = read_bundle(last.read_bytes())
    sites = [{"name": f"site-{i}", "rounds": 3} for i in (1, 2, 3)]
    assert bundle.meta["sites"] == sites
    assert [r["server_round"] for r in bundle.meta["rounds"]] == [1, 2, 3]


def test_a_csv_runs_best_bundle_reproduces_its_federated_accuracy(
    cluster: Any, server: Any, tmp_path: Path
) -> None:
    """Label-skewed CSV sites with a text column: predict on their validation rows."""
    paths = write_skewed_sites(tmp_path, seed=1, categorical=True)
    procs = [cluster.client(server, p.stem, "--data", str(p), "--label-column", LABEL)
             for p in paths]
    server.wait_for_clients(3, procs)
    run_id = server.api.launch(task="csv", rounds=6, min_clients=3, local_epochs=5,
                               batch_size=8, learning_rate=0.05)
    run = server.wait_for_run(run_id)
    assert run["status"] == "finished", run["error"]
    scores = [r["federated_accuracy"] for r in run["rounds"]]
    best_round = scores.index(max(scores)) + 1
    best = _bundle(server, run_id, "best", tmp_path / "best.zip")
    val = _validation_csv([load_csv(p, LABEL) for p in paths], tmp_path / "val.csv")

    report = _predict(str(best), str(val), "--label-column", LABEL)

    assert report["server_round"] == best_round and report["which"] == "best"
    assert report["accuracy"] == pytest.approx(max(scores), rel=1e-9)
    # Every metric of the round, from the same counts: the same to the last bit.
    shown = run["rounds"][best_round - 1]
    assert set(shown["metrics"]) == {"accuracy", "balanced_accuracy", "macro_f1",
                                     "auroc", "sensitivity", "specificity", "log_loss"}
    assert report["metrics"]["log_loss"] == pytest.approx(
        shown["metrics"].pop("log_loss"), rel=1e-6)
    assert {k: report["metrics"][k] for k in shown["metrics"]} == shown["metrics"]
    assert report["confusion"] == shown["confusion"]
    per_site = shown["client_metrics"].values()
    assert all(0.0 <= site["val_auroc"] <= 1.0 for site in per_site)


def _validation_csv(sites: list[ClientData], path: Path) -> Path:
    """Write every site's validation rows back as text, as the sites hold them."""
    names = sites[0].feature_names
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*names, LABEL])
        for site in sites:
            assert site.raw_val is not None
            for row, y in zip(site.raw_val, site.y_val):
                cells = [
                    "" if np.isnan(v) else
                    site.categories[j][int(v)] if j in site.categories else repr(v)
                    for j, v in enumerate(row.tolist())
                ]
                writer.writerow([*cells, site.classes[y]])
    return path


def test_bundle_requests_are_checked(cluster: Any, server: Any) -> None:
    """Unknown run 404, bad which 400, a run without rounds 404."""
    assert server.api.request("GET", "/api/runs/999/bundle")[0] == 404
    assert server.api.request("GET", "/api/runs/1/bundle?which=worst")[0] == 400
