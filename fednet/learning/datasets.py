"""A client's local data: slices of the built-in data sets, or its own CSV file.

Built-in data sets (``digits``, ``breast_cancer``) ship with scikit-learn, so
nothing is downloaded. Their recipe, shared by every client and by the
benchmarks, is fixed:

1. a stratified 20% test hold-out with ``random_state=0`` (independent of the
   run's seed), kept by the coordinator for centralised evaluation;
2. a StandardScaler fitted on the remaining 80% (the train part);
3. the train part cut into n partitions, IID (``alpha=None``) or label-skewed
   by :func:`~fednet.learning.partition.dirichlet_partition` with the seed;
4. partition i (1-based) split into train/validation by ``val_fraction``,
   stratified when every class has at least two examples.

A CSV client keeps its raw features (NaN where a cell is missing) and a
summary of its train split (:class:`~fednet.learning.fedstats.FeatureStats`),
which it announces so that the coordinator can fix one preprocessing for the
whole run. Until a run sends one (and for a coordinator of an earlier release,
which sends none) it scales with its own train split's statistics.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from fednet.learning.clientdata import ClientData as ClientData
from fednet.learning.csvfile import read_csv_table
from fednet.learning.fedstats import FeatureStats
from fednet.learning.preprocess import Preprocess
from fednet.learning.partition import (
    dirichlet_partition,
    iid_partition,
    split_train_val,
)
from fednet.learning.schema import MAX_LABEL_CLASSES, Schema, sort_labels
from fednet.typing import NDArray

logger = logging.getLogger(__name__)

BUILTIN_DATASETS = ("digits", "breast_cancer")
TEST_FRACTION = 0.2

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class _Builtin:
    x_train: F32
    targets: I64  # sklearn's target values of the train part
    x_test: F32
    y_test: I64  # indices into classes
    class_of_target: I64
    feature_names: tuple[str, ...]
    classes: tuple[str, ...]
    mean: npt.NDArray[np.float64]
    scale: npt.NDArray[np.float64]


def _read_only(*arrays: NDArray) -> None:
    for array in arrays:
        array.flags.writeable = False


@functools.lru_cache(maxsize=None)
def _load_builtin(name: str) -> _Builtin:
    if name not in BUILTIN_DATASETS:
        raise ValueError(
            f"unknown dataset {name!r}; expected one of {', '.join(BUILTIN_DATASETS)}"
        )
    # Imported here: scikit-learn costs ~85 MB of memory, which processes of
    # the synthetic and CSV tasks never need.
    from sklearn.datasets import load_breast_cancer, load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    bunch = load_digits() if name == "digits" else load_breast_cancer()
    x, targets = bunch.data, bunch.target.astype(np.int64)
    x_tr, x_te, t_tr, t_te = train_test_split(
        x, targets, test_size=TEST_FRACTION, stratify=targets, random_state=0
    )
    scaler = StandardScaler().fit(x_tr)
    # Class names: the digit values, or breast_cancer's "malignant"/"benign".
    names = [str(n) for n in bunch.target_names]
    classes = sort_labels(names)
    class_of_target = np.array([classes.index(n) for n in names], dtype=np.int64)
    data = _Builtin(
        x_train=scaler.transform(x_tr).astype(np.float32),
        targets=t_tr,
        x_test=scaler.transform(x_te).astype(np.float32),
        y_test=class_of_target[t_te],
        class_of_target=class_of_target,
        feature_names=tuple(str(f) for f in bunch.feature_names),
        classes=classes,
        mean=scaler.mean_,
        scale=scaler.scale_,
    )
    _read_only(data.x_train, data.targets, data.x_test, data.y_test, data.mean)
    _read_only(data.class_of_target, data.scale)
    logger.info("loaded %s: %d train, %d test rows", name, len(t_tr), len(t_te))
    return data


def load_builtin_test(name: str) -> tuple[F32, I64, Schema]:
    """Return the scaled, held-out test split of a built-in data set.

    The arrays are cached and read-only.

    Returns:
        ``(x_test, y_test, schema)``, labels as indices into ``schema.classes``.

    Raises:
        ValueError: on an unknown data set name.
    """
    data = _load_builtin(name)
    schema = Schema(feature_names=data.feature_names, classes=data.classes)
    return data.x_test, data.y_test, schema


def load_builtin_partition(
    name: str,
    partition: tuple[int, int],
    *,
    alpha: float | None,
    seed: int,
    val_fraction: float = 0.2,
) -> ClientData:
    """Return one client's slice of a built-in data set (recipe in the module doc).

    Args:
        name: ``digits`` or ``breast_cancer``.
        partition: ``(i, n)``, the i-th of n slices, counted from 1.
        alpha: Dirichlet label-skew concentration, or None for IID slices.
        seed: seed of the partition and of the train/validation split.
        val_fraction: share of the slice kept for validation.

    Raises:
        ValueError: on an unknown name, a bad partition, or a split that
            cannot give every slice enough examples.
    """
    i, n = partition
    if not 1 <= i <= n:
        raise ValueError(f"partition must be i/n with 1 <= i <= n, got {i}/{n}")
    data = _load_builtin(name)
    size = len(data.targets)
    if alpha is None:
        parts = iid_partition(size, n, seed)
        how = "IID"
    else:
        min_size = max(2, min(10, size // (2 * n)))
        parts = dirichlet_partition(data.targets, n, alpha, seed, min_size=min_size)
        how = f"Dirichlet alpha={alpha:g}"
    rows = parts[i - 1]
    y = data.class_of_target[data.targets[rows]]
    train, val = split_train_val(y, val_fraction, np.random.default_rng([seed, i]))
    return ClientData(
        x_train=data.x_train[rows[train]],
        y_train=y[train],
        x_val=data.x_train[rows[val]],
        y_val=y[val],
        feature_names=data.feature_names,
        classes=data.classes,
        description=(
            f"{name} partition {i}/{n} ({how}, seed {seed}): {len(train)} train /"
            f" {len(val)} validation examples, {len(data.classes)} classes"
        ),
        task=name,
        feature_mean=data.mean,
        feature_scale=data.scale,
    )


def load_csv(
    path: Path, label_column: str, *, val_fraction: float = 0.2, seed: int = 0
) -> ClientData:
    """Load a client's own CSV file (format in :mod:`fednet.learning.csvfile`).

    ``x_train`` and ``x_val`` are standardised with the mean and standard
    deviation of this client's train split (constant columns are only centred,
    missing cells take the mean); a run's shared preprocessing replaces them
    (see :class:`~fednet.client.trainer.Trainer`).

    Raises:
        DataError: if the file cannot be read or parsed (names file, line, column).
        ValueError: if ``val_fraction`` is not in (0, 1).
    """
    table = read_csv_table(Path(path), label_column)
    labels = sort_labels(table.labels)
    target_only = table.targets is not None and len(labels) > MAX_LABEL_CLASSES
    classes = () if target_only else labels
    index = {label: k for k, label in enumerate(classes)}
    y = np.array([index.get(label, 0) for label in table.labels], dtype=np.int64)
    train, val = split_train_val(y, val_fraction, np.random.default_rng(seed))
    raw_train = table.x[train]
    stats = FeatureStats.from_matrix(raw_train, categories=table.categories)
    # Until a run sends its preprocessing (categories coded as numbers).
    local = Preprocess.from_stats(FeatureStats.from_matrix(raw_train, 0), False)
    scaled = local.apply(table.x)
    what = "a numeric target" if target_only else f"{len(classes)} classes"
    return ClientData(
        x_train=scaled[train],
        y_train=y[train],
        x_val=scaled[val],
        y_val=y[val],
        feature_names=table.feature_names,
        classes=classes,
        description=(
            f"{Path(path).name}: {len(train)} train / {len(val)} validation examples,"
            f" {len(table.feature_names)} features, {what}"
        ),
        task="csv",
        feature_mean=local.mean,
        feature_scale=local.scale,
        raw_train=raw_train,
        raw_val=table.x[val],
        stats=stats,
        categories=table.categories,
        targets_train=None if table.targets is None else table.targets[train],
        targets_val=None if table.targets is None else table.targets[val],
    )
