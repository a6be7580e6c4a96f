"""In-process federations of trainers: FedAvg over label-skewed shards."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split

from fednet.learning.datasets import load_builtin_partition, load_builtin_test
from fednet.learning.partition import dirichlet_partition
from fednet.learning.trainers.base import TrainConfig, Trainer, TrainerContext
from fednet.typing import NDArrays


def fedavg(results: Sequence[tuple[NDArrays, int]]) -> NDArrays:
    """Average parameters weighted by num_examples (McMahan et al. 2017)."""
    weights = np.array([n for _, n in results], dtype=np.float64)
    weights /= weights.sum()
    first = results[0][0]
    return [
        np.tensordot(weights, np.stack([p[i] for p, _ in results]), axes=1).astype(
            first[i].dtype
        )
        for i in range(len(first))
    ]


def federate(
    trainers: Sequence[Trainer], params: NDArrays, rounds: int, config: TrainConfig
) -> NDArrays:
    """Play ``rounds`` FedAvg rounds over every trainer; return the global model."""
    params = [np.array(p) for p in params]
    for server_round in range(1, rounds + 1):
        round_config = dataclasses.replace(config, server_round=server_round)
        params = fedavg([t.fit(params, round_config)[:2] for t in trainers])
    return params


def digits_sites(alpha: float = 0.5, seed: int = 0) -> list[TrainerContext]:
    """Return three label-skewed slices of the built-in digits, as contexts."""
    parts = [
        load_builtin_partition("digits", (i, 3), alpha=alpha, seed=seed)
        for i in (1, 2, 3)
    ]
    return [
        TrainerContext(c.x_train, c.y_train, c.x_val, c.y_val, 10, site_number=i)
        for i, c in enumerate(parts, start=1)
    ]


def digits_test() -> TrainerContext:
    """Return the digits hold-out as a context (train and validation alike)."""
    x, y, _ = load_builtin_test("digits")
    return TrainerContext(x, y, x, y, 10)


def pooled(sites: Sequence[TrainerContext], test: TrainerContext) -> TrainerContext:
    """Return every site's train split as one site, validated on ``test``."""
    x = np.concatenate([s.x_train for s in sites])
    y = np.concatenate([s.y_train for s in sites])
    return TrainerContext(x, y, test.x_val, test.y_val, sites[0].num_classes)


def diabetes_sites(
    alpha: float = 0.5, seed: int = 0
) -> tuple[list[TrainerContext], TrainerContext]:
    """Split diabetes three ways, skewed by target quintile; return sites and test.

    Features and target are standardised with the train part's statistics.
    """
    bunch = load_diabetes()
    x, x_test, y, y_test = train_test_split(
        bunch.data, bunch.target, test_size=0.2, random_state=0
    )
    mean, scale = x.mean(axis=0), x.std(axis=0)
    x, x_test = (x - mean) / scale, (x_test - mean) / scale
    y_mean, y_scale = y.mean(), y.std()
    y, y_test = (y - y_mean) / y_scale, (y_test - y_mean) / y_scale
    bins = np.digitize(y, np.quantile(y, [0.2, 0.4, 0.6, 0.8]))
    parts = dirichlet_partition(bins, 3, alpha, seed, min_size=30)
    sites = [
        TrainerContext(x[p], y[p], x[p], y[p], None, site_number=i)
        for i, p in enumerate(parts, start=1)
    ]
    return sites, TrainerContext(x_test, y_test, x_test, y_test, None)
