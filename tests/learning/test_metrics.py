"""Metrics from summable statistics: equal to scikit-learn's on the pooled rows."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from fednet import fields
from fednet.learning import metrics as m
from fednet.protocol import EvaluateResult
from fednet.tally import RoundTally
from fednet.typing import ClientId


def _rows(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and noisy probabilities that favour the true class."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba.astype(np.float32)


def _binned(p: np.ndarray) -> np.ndarray:
    return np.clip((p.astype(np.float64) * m.AUROC_BINS).astype(int), 0, 99)


def _pooled(parts: list[tuple[np.ndarray, np.ndarray]], k: int) -> m.ClassStats:
    total = m.ClassStats.empty(k)
    for y, p in parts:
        total.add(m.classification_stats(y, p, k))
    return total


@pytest.mark.parametrize("k", [2, 3, 10])
def test_the_sum_of_sites_statistics_gives_the_pooled_rows_metrics(k: int) -> None:
    """Three sites' counts added = scikit-learn on the union of their rows."""
    parts = [_rows(n, k, seed) for seed, n in enumerate((40, 75, 9))]
    y = np.concatenate([p[0] for p in parts])
    proba = np.concatenate([p[1] for p in parts])
    pred = proba.argmax(axis=1)

    got = m.derive(_pooled(parts, k))

    assert got["accuracy"] == pytest.approx(sk.accuracy_score(y, pred), abs=1e-12)
    assert got["balanced_accuracy"] == pytest.approx(
        sk.balanced_accuracy_score(y, pred), abs=1e-12)
    labels = sorted(set(y) | set(pred))
    assert got["macro_f1"] == pytest.approx(
        sk.f1_score(y, pred, average="macro", labels=labels), abs=1e-12)
    if k == 2:
        expected = sk.roc_auc_score(y, _binned(proba[:, 1]))
        assert got["sensitivity"] == pytest.approx(sk.recall_score(y, pred), abs=1e-12)
        assert got["specificity"] == pytest.approx(
            sk.recall_score(1 - y, 1 - pred), abs=1e-12)
    else:
        expected = np.mean([sk.roc_auc_score(y == c, _binned(proba[:, c]))
                            for c in range(k)])
        assert "sensitivity" not in got
    assert got["auroc"] == pytest.approx(expected, abs=1e-12)


def test_sensitivity_and_specificity_follow_the_positive_class() -> None:
    """A chosen positive class of a multiclass problem: recall of it and of the rest."""
    y, proba = _rows(200, 3, 7)
    pred = proba.argmax(axis=1)
    got = m.derive(m.classification_stats(y, proba, 3), positive=2)
    assert got["sensitivity"] == pytest.approx(sk.recall_score(y == 2, pred == 2))
    assert got["specificity"] == pytest.approx(sk.recall_score(y != 2, pred != 2))


def test_regression_metrics_from_sums_equal_the_pooled_ones() -> None:
    """MSE, MAE and R² of the union, from each site's four sums."""
    rng = np.random.default_rng(0)
    parts = [(rng.normal(size=n) * 3 + 1, rng.normal(size=n)) for n in (30, 50)]
    total = m.RegressionStats()
    for y, noise in parts:
        total.add(m.regression_stats(y, y + noise))
    y = np.concatenate([p[0] for p in parts])
    pred = y + np.concatenate([p[1] for p in parts])
    got = m.derive(total)
    assert got["mse"] == pytest.approx(sk.mean_squared_error(y, pred))
    assert got["mae"] == pytest.approx(sk.mean_absolute_error(y, pred))
    assert got["r2"] == pytest.approx(sk.r2_score(y, pred))


def test_statistics_survive_the_wire_and_only_nonzero_counts_travel() -> None:
    """to_wire then from_wire gives the same counts; zeros are not sent."""
    y, proba = _rows(50, 4, 1)
    stats = m.classification_stats(y, proba, 4)
    wire = m.to_wire(stats)
    assert all(v > 0 for v in wire.values()) and len(wire) < 4 * 4 + 8 * 100
    back = m.from_wire({"accuracy": 0.5, **wire}, 50, 4)
    assert isinstance(back, m.ClassStats)
    assert (back.confusion == stats.confusion).all()
    assert (back.positives == stats.positives).all()
    assert fields.MAX_EVAL_METRICS == fields.MAX_METRICS + m.MAX_STAT_KEYS


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"_cm:0:0": 1.5}, "not an integer"),
        ({"_cm:0:0": -1.0}, "not an integer"),
        ({"_cm:9:0": 1.0}, "unknown statistic"),
        ({"_xx:0:0": 1.0}, "unknown statistic"),
        ({"_cm:0:0:1": 1.0}, "unknown statistic"),
        ({"_cm:00001:0": 1.0}, "unknown statistic"),
        ({"_cm:1:1": 1000.0}, "not an integer"),
        ({"_cm:0:0": 20.0}, "counts"),
        ({"_rp:1:3": 5.0}, "score counts"),
    ],
)
def test_hostile_statistics_are_refused_with_the_reason(
    change: dict[str, float], reason: str
) -> None:
    """Counts that are not counts, or do not add up to the rows, are refused."""
    y, proba = _rows(20, 2, 3)
    wire = {**m.to_wire(m.classification_stats(y, proba, 2)), **change}
    with pytest.raises(ValueError, match=reason):
        m.from_wire(wire, 20, 2)


def test_too_many_statistics_are_refused_before_reading_them() -> None:
    wire = {f"_cm:{i}:0": 1.0 for i in range(m.MAX_STAT_KEYS + 1)}
    with pytest.raises(ValueError, match="at most"):
        m.from_wire(wire, 10, 2)


def test_a_tally_refuses_a_site_whose_counts_lie_and_keeps_the_others() -> None:
    """The round's metrics come from honest sites; the liar is named with why."""
    tally = RoundTally(num_classes=2, wanted=frozenset(m.CLASSIFICATION))
    honest = [_rows(30, 2, s) for s in (1, 2)]
    for i, (y, p) in enumerate(honest):
        wire = m.to_wire(m.classification_stats(y, p, 2))
        result = EvaluateResult(1, 1, 30, 0.5, {"accuracy": 0.0, **wire})
        assert tally.add_evaluation(ClientId(f"c{i}"), result) is None
    lying = EvaluateResult(1, 1, 30, 0.5, {"_cm:0:0": 30.0, "_cm:1:1": 30.0})
    assert "confusion matrix" in (tally.add_evaluation(ClientId("x"), lying) or "")

    record = tally.record(1)

    expected = m.derive(_pooled(honest, 2))
    assert record.metrics == {**expected, "log_loss": 0.5}
    assert record.evaluated_clients == ("c0", "c1")
    assert record.confusion is not None and sum(map(sum, record.confusion)) == 60
    assert record.client_metrics[ClientId("c0")]["val_auroc"] == m.derive(
        m.classification_stats(*honest[0], 2))["auroc"]


def test_an_evaluation_without_statistics_leaves_only_accuracy_and_loss() -> None:
    """A site of an earlier release: the other metrics would not be the pooled ones."""
    tally = RoundTally(num_classes=2, wanted=frozenset(m.CLASSIFICATION))
    y, p = _rows(30, 2, 1)
    wire = m.to_wire(m.classification_stats(y, p, 2))
    tally.add_evaluation(ClientId("new"), EvaluateResult(1, 1, 30, 0.5, {
        "accuracy": 0.8, **wire}))
    tally.add_evaluation(ClientId("old"), EvaluateResult(1, 1, 10, 0.7, {
        "accuracy": 0.6}))
    record = tally.record(1)
    assert set(record.metrics) == {"accuracy", "log_loss"}
    assert record.metrics["accuracy"] == pytest.approx(0.75)
    assert record.confusion is None


def test_a_run_recording_other_metrics_keeps_its_accuracy_column() -> None:
    """metrics=[auroc]: the round records auroc alone, and still its accuracy."""
    tally = RoundTally(num_classes=2, wanted=frozenset({"auroc"}))
    y, p = _rows(40, 2, 5)
    wire = m.to_wire(m.classification_stats(y, p, 2))
    tally.add_evaluation(ClientId("a"), EvaluateResult(1, 1, 40, 0.4, {
        "accuracy": 0.0, **wire}))
    record = tally.record(1)
    expected = m.derive(m.classification_stats(y, p, 2))
    assert record.metrics == {"auroc": expected["auroc"]}
    assert record.federated_accuracy == expected["accuracy"]
    assert set(record.client_metrics[ClientId("a")]) == {"val_loss", "val_accuracy",
                                                         "val_auroc"}
