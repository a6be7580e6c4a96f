"""Sites' own trainers with real processes: plug-ins, eligibility, old clients."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split

from fednet.learning.datasets import load_csv
from fednet.learning.partition import dirichlet_partition
from fednet.learning.preprocess import Preprocess
from fednet.learning.trainers.base import TrainConfig, TrainerContext
from fednet.learning.trainers.sklearn_adapter import SklearnTrainer
from fednet.params import arrays_to_frame, frame_to_arrays
from tests.trainers.federation import digits_sites, digits_test, federate, pooled
from tests.trainers.plugins import make_mlp_regressor, make_sgd

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = "tests.trainers.plugins"


@pytest.fixture(autouse=True)
def plugins_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the client processes import this tree's test plug-ins (and fednet)."""
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", f"{ROOT}{os.pathsep}{path}" if path else str(ROOT))


def _digits_client(cluster: Any, server: Any, i: int, count: int, *flags: str) -> Any:
    return cluster.client(
        server, f"site-{i}", "--dataset", "digits", "--partition", f"{i}/{count}",
        "--alpha", "0.5", "--seed", "0", *flags,
    )


def _wait_for_trainers(server: Any, count: int, procs: list[Any]) -> None:
    """Wait until ``count`` clients are connected and announced their trainers."""
    server.wait_for(
        lambda: sum(
            c["trainers"][0]["fingerprint"] is not None for c in server.connected()
        ) == count,
        f"{count} clients with trainers",
    )
    assert all(p.alive for p in procs)


def test_sgd_classifier_federation_of_real_clients_matches_pooled(
    cluster: Any, server: Any
) -> None:
    """Three sites' SGDClassifier: within 2 points of the pooled estimator."""
    flag = ("--trainer", f"sgd={PLUGINS}:sgd_classifier")
    procs = [_digits_client(cluster, server, i, 3, *flag) for i in (1, 2, 3)]
    _wait_for_trainers(server, 3, procs)

    run_id = server.api.launch(
        task="digits", model="sgd", rounds=20, local_epochs=1, min_clients=3
    )
    run = server.wait_for_run(run_id)

    assert run["status"] == "finished", run["error"]
    assert all(len(r["clients"]) == 3 for r in run["rounds"])
    # the adapter's predictions give the run its metrics and confusion matrix
    last = run["rounds"][-1]
    assert {"balanced_accuracy", "macro_f1", "auroc"} <= set(last["metrics"]), str(last)
    assert last["confusion"] is not None and len(last["confusion"]) == 10
    sites, test = digits_sites(alpha=0.5), digits_test()
    config = TrainConfig(epochs=1)
    central = SklearnTrainer(make_sgd(), pooled(sites, test))
    pooled_params = federate([central], central.get_parameters(), 20, config)
    judge = SklearnTrainer(make_sgd(), test)
    fed_accuracy = judge.evaluate(server.api.model(run_id), config)[2]["accuracy"]
    pooled_accuracy = judge.evaluate(pooled_params, config)[2]["accuracy"]
    print(f"SGDClassifier: federated {fed_accuracy:.3f}, pooled {pooled_accuracy:.3f}")
    assert fed_accuracy >= pooled_accuracy - 0.02


def test_other_architectures_and_missing_trainers_are_ineligible(
    cluster: Any, server: Any
) -> None:
    """Another hidden size, or no such trainer: ineligible with the reason; the
    run finishes with the others and every client keeps running."""
    wide = ("--trainer", f"wide={PLUGINS}:mlp32")
    procs = [
        _digits_client(cluster, server, 1, 4, *wide),
        _digits_client(cluster, server, 2, 4, *wide),
        _digits_client(cluster, server, 3, 4, "--trainer", f"wide={PLUGINS}:mlp16"),
        _digits_client(cluster, server, 4, 4, "--trainer", f"bad={PLUGINS}:broken"),
    ]
    _wait_for_trainers(server, 4, procs)

    run_id = server.api.launch(
        task="digits", model="wide", rounds=4, local_epochs=2, min_clients=2
    )
    run = server.wait_for_run(run_id)
    # why each sat out, as the clients list still says once the run ended
    notes = {c["name"]: c["note"] for c in server.connected()}

    assert run["status"] == "finished", run["error"]
    assert all(sorted(r["clients"]) == ["site-1", "site-2"] for r in run["rounds"])
    assert notes["site-3"].startswith(f"run {run_id}: architecture_mismatch")
    assert "W1: expected float32 (64, 16), got float32 (64, 32)" in notes["site-3"]
    assert notes["site-4"] == (
        f"run {run_id}: the site has no trainer 'wide' (it has logreg, mlp)")
    assert all(p.alive for p in procs)
    assert len(server.connected()) == 4


async def test_a_client_of_the_previous_release_joins_a_logreg_run(
    cluster: Any, server: Any
) -> None:
    """A hello without trainers (and no trainers message): counted as built-ins."""
    hello = {
        "type": "hello", "name": "old", "instance": "o-1", "num_examples": 100,
        "task": "synthetic", "protocol_version": 1,
    }
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(server.ws_url) as ws:
            await ws.send_str(json.dumps(hello))
            welcome = json.loads((await ws.receive(timeout=30)).data)
            assert welcome["type"] == "welcome"
            run_id = server.api.launch(
                task="synthetic", model="logreg", rounds=1, min_clients=1,
                synthetic_params=10,
            )
            while True:
                frame = await ws.receive(timeout=60)
                if frame.type is aiohttp.WSMsgType.BINARY:
                    break
            header, params = frame_to_arrays(frame.data)
            assert header["type"] == "fit" and header["run_id"] == run_id
            reply = {
                "type": "fit_result", "run_id": run_id, "server_round": 1,
                "num_examples": 100, "metrics": {},
            }
            await ws.send_bytes(bytes(arrays_to_frame(reply, [np.array(p) for p in
                                                              params])))
            run = await asyncio.to_thread(server.wait_for_run, run_id)
    assert run["status"] == "finished", run["error"]
    assert run["rounds"][0]["clients"] == ["old"]
    listed = server.api.get("/api/clients")
    assert listed[0]["trainers"] == [
        {"name": "logreg", "fingerprint": None}, {"name": "mlp", "fingerprint": None},
    ]


def _diabetes_csvs(folder: Path) -> tuple[list[Path], Any, Any]:
    """Write three target-skewed diabetes sites as CSV; return them and the test set."""
    bunch = load_diabetes()
    x, x_test, y, y_test = train_test_split(
        bunch.data, bunch.target, test_size=0.2, random_state=0
    )
    bins = np.digitize(y, np.quantile(y, [0.2, 0.4, 0.6, 0.8]))
    parts = dirichlet_partition(bins, 3, 0.5, 0, min_size=30)
    paths = []
    header = ",".join([*bunch.feature_names, "target"])
    for i, rows in enumerate(parts, start=1):
        path = folder / f"site-{i}.csv"
        table = np.column_stack([x[rows], y[rows]])
        np.savetxt(path, table, delimiter=",", header=header, comments="", fmt="%.10g")
        paths.append(path)
    return paths, x_test, y_test


ROUNDS = 160
"""Rounds of the MLPRegressor federation (R² 0.351 federated, 0.369 pooled)."""


def test_mlp_regressor_federation_of_real_clients_matches_pooled(
    cluster: Any, server: Any, tmp_path: Path
) -> None:
    """Three CSV sites' MLPRegressor: R² within 0.03 of the pooled estimator."""
    paths, x_test, y_test = _diabetes_csvs(tmp_path)
    flag = ("--trainer", f"mlpr={PLUGINS}:mlp_regressor")
    procs = [
        cluster.client(server, f"site-{i}", "--data", str(path),
                       "--label-column", "target", *flag)
        for i, path in enumerate(paths, start=1)
    ]
    _wait_for_trainers(server, 3, procs)

    run_id = server.api.launch(
        task="csv", model="mlpr", rounds=ROUNDS, local_epochs=1, min_clients=3
    )
    run = server.wait_for_run(run_id, timeout_s=240)

    assert run["status"] == "finished", run["error"]
    assert run["schema"]["problem"] == "regression"
    preprocess = Preprocess.from_dict(run["schema"]["preprocess"])
    train = [load_csv(p, "target", seed=0) for p in paths]  # the sites' own splits
    x = np.concatenate([preprocess.apply(d.raw_train) for d in train])
    y = np.concatenate([preprocess.scale_target(d.targets_train) for d in train])
    xt, yt = preprocess.apply(x_test), preprocess.scale_target(y_test)
    config = TrainConfig(epochs=1)
    central = SklearnTrainer(make_mlp_regressor(), TrainerContext(x, y, xt, yt, None))
    pooled_params = federate([central], central.get_parameters(), ROUNDS, config)
    judge = SklearnTrainer(make_mlp_regressor(), TrainerContext(xt, yt, xt, yt, None))
    fed_r2 = judge.evaluate(server.api.model(run_id), config)[2]["r2"]
    pooled_r2 = judge.evaluate(pooled_params, config)[2]["r2"]
    print(f"MLPRegressor: federated R2 {fed_r2:.3f}, pooled R2 {pooled_r2:.3f}")
    assert pooled_r2 >= 0.3
    assert fed_r2 >= pooled_r2 - 0.03
