"""Robust aggregators against direct NumPy computations on small arrays."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fednet import robust
from fednet.aggregation import ClippedFedAvg
from fednet.config import RunConfig
from fednet.exceptions import AggregationError
from fednet.robust import FedMedian, FedTrimmedAvg, Krum
from fednet.strategies import FedAvg, FedProx, PerRound, strategy_from_config
from fednet.typing import NDArrays


def _model(value: float = 0.0) -> NDArrays:
    return [np.full((2, 3), value, dtype=np.float32), np.full(4, value, np.float32)]


def _random_updates(n: int, seed: int = 0) -> list[NDArrays]:
    rng = np.random.default_rng(seed)
    return [
        [rng.normal(size=(2, 3)).astype(np.float32), rng.normal(size=4).astype("f4")]
        for _ in range(n)
    ]


def _stack(updates: list[NDArrays], index: int) -> np.ndarray:
    return np.stack([u[index] for u in updates])


def _fold(aggregator: robust._Rows | ClippedFedAvg, updates: list[NDArrays],
          weights: list[int] | None = None) -> NDArrays:
    for k, update in enumerate(updates):
        aggregator.add(update, weights[k] if weights else 1)
    return aggregator.result()


@pytest.mark.parametrize("n", [1, 4, 5])
def test_median_matches_numpy_for_odd_and_even_counts(tmp_path: Path, n: int) -> None:
    updates = _random_updates(n)

    result = _fold(FedMedian(_model(), tmp_path), updates, list(range(1, n + 1)))

    for i in range(2):
        np.testing.assert_array_equal(result[i], np.median(_stack(updates, i), axis=0))
        assert result[i].dtype == np.float32 and result[i].shape == updates[0][i].shape


def test_median_with_ties_and_even_count_averages_the_middle_pair(
    tmp_path: Path,
) -> None:
    values = [1.0, 3.0, 3.0, 10.0, 2.0, 3.0]
    updates = [_model(v) for v in values]

    result = _fold(FedMedian(_model(), tmp_path), updates)

    np.testing.assert_array_equal(result[0], np.full((2, 3), 3.0, np.float32))
    np.testing.assert_array_equal(result[1], np.median(_stack(updates, 1), axis=0))


def test_median_reads_in_column_chunks_smaller_than_a_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(robust, "CHUNK_BYTES", 12)  # 1 column of 3 float32 rows
    updates = _random_updates(3, seed=1)

    result = _fold(FedMedian(_model(), tmp_path), updates)

    for i in range(2):
        np.testing.assert_array_equal(result[i], np.median(_stack(updates, i), axis=0))


@pytest.mark.parametrize(("n", "beta"), [(5, 0.2), (10, 0.2), (4, 0.25), (3, 0.0)])
def test_trimmed_mean_matches_numpy(tmp_path: Path, n: int, beta: float) -> None:
    updates = _random_updates(n, seed=n)
    cut = int(beta * n)

    result = _fold(FedTrimmedAvg(_model(), tmp_path, trim_fraction=beta), updates)

    for i in range(2):
        expected = np.sort(_stack(updates, i), axis=0)[cut : n - cut].mean(axis=0)
        np.testing.assert_allclose(result[i], expected, rtol=1e-6)


def test_trimmed_mean_drops_the_outliers(tmp_path: Path) -> None:
    updates = [_model(v) for v in (1.0, 2.0, -100.0, 3.0, 100.0)]

    result = _fold(FedTrimmedAvg(_model(), tmp_path, trim_fraction=0.2), updates)

    np.testing.assert_allclose(result[1], np.full(4, 2.0))


def _krum_scores(updates: list[NDArrays], f: int) -> np.ndarray:
    flat = np.stack(
        [np.concatenate([a.ravel() for a in u]).astype(np.float64) for u in updates]
    )
    d = ((flat[:, None, :] - flat[None, :, :]) ** 2).sum(axis=2)
    closest = max(1, len(updates) - f - 2)
    return np.array(
        [np.sort(np.delete(d[i], i))[:closest].sum() for i in range(len(updates))]
    )


@pytest.mark.parametrize(("n", "f"), [(5, 1), (6, 1), (7, 2), (2, 0)])
def test_krum_scores_and_choice_match_numpy(tmp_path: Path, n: int, f: int) -> None:
    updates = _random_updates(n, seed=10 + n)
    krum = Krum(_model(), tmp_path, num_malicious=f)
    for update in updates:
        krum.add(update, 1)
    expected = _krum_scores(updates, f)

    np.testing.assert_allclose(krum.scores(), expected, rtol=1e-6)
    result = krum.result()

    best = int(np.argmin(expected))
    for i in range(2):
        np.testing.assert_array_equal(result[i], updates[best][i])


def test_krum_tie_goes_to_the_earlier_update(tmp_path: Path) -> None:
    updates = [_model(1.0), _model(1.0), _model(1.0), _model(50.0)]
    krum = Krum(_model(), tmp_path, num_malicious=0)
    for k, update in enumerate(updates):
        krum.add(update, 1)

    np.testing.assert_array_equal(krum.scores()[:3], [0.0, 0.0, 0.0])
    assert krum.scores()[3] > 0
    assert krum.result()[0][0, 0] == 1.0


def test_multikrum_averages_the_n_minus_f_best_weighted(tmp_path: Path) -> None:
    updates = _random_updates(6, seed=3)
    updates[4] = [10 * a for a in updates[4]]
    weights = [1, 2, 3, 4, 5, 6]
    expected_scores = _krum_scores(updates, 1)
    keep = np.sort(np.argsort(expected_scores, kind="stable")[:5])
    assert 4 not in keep

    result = _fold(Krum(_model(), tmp_path, num_malicious=1, multi=True), updates,
                   weights)

    w = np.array([weights[k] for k in keep], dtype=np.float64)
    for i in range(2):
        expected = np.tensordot(w / w.sum(), _stack(updates, i)[keep], axes=1)
        np.testing.assert_allclose(result[i], expected, rtol=1e-6)


def test_clipped_fedavg_matches_numpy(tmp_path: Path) -> None:
    start = _random_updates(1, seed=7)[0]
    updates = _random_updates(4, seed=8)
    updates[2] = [50 * a for a in updates[2]]
    weights = [3, 1, 2, 5]
    clip = 2.0

    result = _fold(ClippedFedAvg(start, clip_norm=clip), updates, weights)

    deltas = []
    for u in updates:
        d = [a.astype(np.float64) - g for a, g in zip(u, start)]
        norm = np.sqrt(sum((x**2).sum() for x in d))
        deltas.append([x * min(1.0, clip / norm) for x in d])
    w = np.array(weights, dtype=np.float64) / sum(weights)
    for i in range(2):
        expected = start[i] + sum(wk * d[i] for wk, d in zip(w, deltas))
        np.testing.assert_allclose(result[i], expected, rtol=1e-5, atol=1e-6)


def test_clipped_fedavg_leaves_small_updates_alone(tmp_path: Path) -> None:
    updates = [_model(0.1), _model(0.3)]

    result = _fold(ClippedFedAvg(_model(), clip_norm=100.0), updates, [1, 3])

    np.testing.assert_allclose(result[1], np.full(4, 0.25), rtol=1e-6)


Make = Callable[[Path], "robust._Rows | ClippedFedAvg"]


@pytest.mark.parametrize(
    "make",
    [
        lambda d: FedMedian(_model(), d),
        lambda d: FedTrimmedAvg(_model(), d, trim_fraction=0.2),
        lambda d: Krum(_model(), d, num_malicious=0),
        lambda d: ClippedFedAvg(_model(), clip_norm=1.0),
    ],
)
def test_aggregators_refuse_bad_updates_and_empty_rounds(
    tmp_path: Path, make: Make
) -> None:
    aggregator = make(tmp_path)
    bad = _model()
    bad[1] = np.full(4, np.nan, np.float32)

    with pytest.raises(AggregationError, match="NaN"):
        aggregator.add(bad, 1)
    with pytest.raises(AggregationError, match="num_examples"):
        aggregator.add(_model(), 0)
    with pytest.raises(AggregationError, match="expected shape"):
        aggregator.add([np.zeros((3, 2), np.float32), np.zeros(4, np.float32)], 1)
    with pytest.raises(AggregationError, match="no updates"):
        aggregator.result()
    assert aggregator.count == 0


def test_scratch_file_lives_under_the_directory_and_is_gone_after_result(
    tmp_path: Path,
) -> None:
    median = FedMedian(_model(), tmp_path)
    median.add(_model(1.0), 1)
    # The file is unlinked at creation: nothing to leave behind after a crash.
    assert list(tmp_path.iterdir()) == []
    assert median._rows._file is not None

    median.result()

    assert median._rows._file is None


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("fedmedian", FedMedian),
        ("fedtrimmedavg", FedTrimmedAvg),
        ("krum", Krum),
        ("multikrum", Krum),
        ("fedavg_clipped", ClippedFedAvg),
    ],
)
def test_strategy_from_config_builds_a_fresh_aggregator_each_round(
    tmp_path: Path, name: str, kind: type
) -> None:
    config = RunConfig(strategy=name, min_clients=3, trim_fraction=0.1,
                       num_malicious=0, clip_norm=3.0)

    strategy = strategy_from_config(config, scratch_dir=tmp_path)

    assert isinstance(strategy, PerRound) and strategy.name == name
    first, second = strategy.aggregator(_model()), strategy.aggregator(_model())
    assert isinstance(first, kind) and first is not second
    if name == "fedtrimmedavg":
        assert getattr(first, "trim_fraction") == 0.1
    if name == "multikrum":
        assert getattr(first, "multi") is True


def test_fedavg_and_fedprox_keep_the_streaming_aggregator() -> None:
    fedavg = strategy_from_config(RunConfig(strategy="fedavg"))
    fedprox = strategy_from_config(RunConfig(strategy="fedprox", proximal_mu=0.1))

    assert type(fedavg) is FedAvg and isinstance(fedprox, FedProx)
    assert fedprox.name == "fedprox"
    assert fedprox.aggregator(_model()) is fedprox.aggregator(_model())
