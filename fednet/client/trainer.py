"""Local fit and evaluate on a client's data, as asked by the coordinator; no I/O."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from fednet.client.sitetrainers import (
    SiteTrainers,
    check_run_parameters,
    site_context,
    train_config,
)
from fednet.exceptions import DataError, SchemaError
from fednet.fitconfig import FitConfig
from fednet.learning import metrics as evaluation
from fednet.learning.datasets import ClientData
from fednet.learning.preprocess import Preprocess
from fednet.learning.schema import Schema, check_schema
from fednet.learning.target import TargetStats
from fednet.learning.trainers.base import Predictor, TrainerContext
from fednet.learning.trainers.base import Trainer as SiteTrainer
from fednet.typing import NDArray, NDArrays

logger = logging.getLogger(__name__)

SYNTHETIC_OFFSET = 1e-3
F32 = npt.NDArray[np.float32]


class Trainer:
    """Train and evaluate the run's model on one client's local data.

    Args:
        data: the client's data, or None for the synthetic task (no data).
        client_number: this client's number, used to seed its randomness and
            to offset its synthetic updates.
        trainers: the trainers this site offers (None: the built-ins).
    """

    def __init__(
        self,
        data: ClientData | None,
        *,
        client_number: int = 1,
        trainers: SiteTrainers | None = None,
    ) -> None:
        self._data = data
        self._client_number = client_number
        if trainers is None:  # the built-ins, checked on this site's data
            trainers = SiteTrainers()
            if data is not None:
                trainers.check(site_context(data, client_number))
        self.trainers = trainers
        # The run's preprocessing and the inputs it gave (train, validation).
        self._prepared: tuple[Preprocess, F32, F32] | None = None

    @property
    def schema(self) -> Schema | None:
        """Return the schema of the client's data (None without data)."""
        return None if self._data is None else self._data.schema

    @property
    def num_examples(self) -> int:
        """Return how many training examples this client holds (synthetic: 1)."""
        return 1 if self._data is None else self._data.num_examples

    @property
    def stats(self) -> dict[str, Any] | None:
        """Return the summary of the train split a hello announces (CSV only)."""
        if self._data is None or self._data.stats is None:
            return None
        summary = self._data.stats.to_dict()
        if self._data.targets_train is not None:  # numeric labels: their moments
            summary["target"] = TargetStats.of(self._data.targets_train).to_dict()
        return summary

    @property
    def task(self) -> str:
        """Return the task this client's data serves."""
        return "synthetic" if self._data is None else self._data.task

    def fit(
        self, params: Sequence[NDArray], config: FitConfig
    ) -> tuple[NDArrays, int, dict[str, float]]:
        """Train ``params`` on the local train split for one round.

        The run's trainer (``config.model``, one of this site's) trains;
        the built-ins give the numbers :func:`models.fit` gives.

        Args:
            params: the global model (never written to).
            config: the round's configuration, from the coordinator.

        Returns:
            ``(new_params, num_examples, metrics)``.

        Raises:
            DataError: if the run's task is not the one this client's data serves.
            SchemaError: if the run names no classes, or its classes miss one
                of this client's labels.
            TrainerNotFound: if this site has no such trainer, or it cannot
                be built for the run.
            ArchitectureMismatch: on parameters its trainer cannot take.
            ValueError: if training diverges.
        """
        data = self._task_data(config)
        if data is None:
            offset = np.float32(SYNTHETIC_OFFSET * self._client_number)
            new = [np.asarray(p, dtype=np.float32) + offset for p in params]
            return [p.astype(np.float32, copy=False) for p in new], 1, {}
        trainer, context = self.run_trainer(config, data)
        check_run_parameters(trainer, params)
        new_params, num_examples, metrics = trainer.fit(
            list(params), train_config(config)
        )
        logger.debug(
            "fit: round %d, %d examples, metrics %s",
            config.server_round,
            num_examples,
            metrics,
            extra={"server_round": config.server_round},
        )
        return list(new_params), num_examples, dict(metrics)

    def evaluate(
        self, params: Sequence[NDArray], config: FitConfig
    ) -> tuple[float, int, dict[str, float]]:
        """Measure ``params`` on the local validation split.

        Returns:
            ``(loss, num_examples, metrics)`` as the run's trainer measures
            them plus, when the coordinator asks and the trainer offers
            ``predict``, the summable statistics of :mod:`fednet.learning.metrics`
            computed here from its predictions (regression: the loss is then
            the mean squared error in the label's units); synthetic:
            ``(0.0, 1, {})``.

        Raises:
            DataError, SchemaError, TrainerNotFound, ArchitectureMismatch,
            ValueError: as for :meth:`fit`.
        """
        data = self._task_data(config)
        if data is None:
            return 0.0, 1, {}
        trainer, context = self.run_trainer(config, data)
        check_run_parameters(trainer, params)
        arrays = list(params)
        predictor = trainer if isinstance(trainer, Predictor) else None
        if config.regression and predictor is not None:
            targets = self._targets(data.targets_val)
            predicted: npt.NDArray[Any] = predictor.predict(arrays, context.x_val)
            if config.preprocess is not None:
                predicted = config.preprocess.unscale_target(predicted)
            sums = evaluation.regression_stats(targets, predicted)
            wire = evaluation.to_wire(sums) if config.statistics else {}
            return sums.sums[0] / len(targets), len(targets), wire
        loss, num_examples, metrics = trainer.evaluate(arrays, train_config(config))
        metrics = dict(metrics)
        num_classes = context.num_classes
        if (
            config.statistics
            and predictor is not None
            and num_classes is not None
            and num_classes <= evaluation.MAX_STATS_CLASSES
        ):
            proba = np.asarray(predictor.predict(arrays, context.x_val), np.float64)
            labels = np.asarray(context.y_val, dtype=np.int64)
            stats = evaluation.classification_stats(labels, proba, num_classes)
            metrics.update(evaluation.to_wire(stats))
        return float(loss), num_examples, metrics

    def announce(self) -> list[dict[str, str]]:
        """Return the ``trainers`` this site announces (none without data)."""
        return [] if self._data is None else self.trainers.announce()

    def initial(self, config: FitConfig) -> tuple[dict[str, Any], NDArrays]:
        """Return the run's trainer's architecture and initial parameters.

        Raises:
            DataError, SchemaError, TrainerNotFound: as for :meth:`fit`.
        """
        data = self._task_data(config)
        if data is None:
            raise DataError("the synthetic task has no trainer to initialise")
        trainer, _ = self.run_trainer(config, data)
        params = [np.array(p, copy=True) for p in trainer.get_parameters()]
        check_run_parameters(trainer, params)
        return trainer.architecture().to_dict(), params

    def run_trainer(
        self, config: FitConfig, data: ClientData
    ) -> tuple[SiteTrainer, TrainerContext]:
        """Return the run's trainer built on the site's data as the run sees it.

        The context holds the inputs under the run's preprocessing, the
        labels mapped onto the run's classes (or the scaled targets), and the
        run's options; it is built once per run, not per round.

        Raises:
            SchemaError, TrainerNotFound: as for :meth:`fit`.
        """
        x_train, x_val = self._inputs(config, data)
        y_train: npt.NDArray[Any]
        y_val: npt.NDArray[Any]
        num_classes: int | None
        if config.regression:
            y_train = self._targets(data.targets_train)
            y_val = self._targets(data.targets_val)
            if config.preprocess is not None:
                y_train = config.preprocess.scale_target(y_train)
                y_val = config.preprocess.scale_target(y_val)
            num_classes = None
        else:
            num_classes, y_train = self._labels_for_run(config, data.y_train)
            _, y_val = self._labels_for_run(config, data.y_val)
        names = data.feature_names
        if len(names) != x_train.shape[1] and config.preprocess is not None:
            names = config.preprocess.feature_names(names)  # one-hot columns
        context = TrainerContext(
            x_train, y_train, x_val, y_val, num_classes,
            names if len(names) == x_train.shape[1] else (),
            site_number=self._client_number,
            options={"hidden_units": config.hidden_units},
        )
        # The inputs identify the run's preprocessing: they are the same array
        # while it is (and a cached trainer keeps them alive, so the id too).
        key = (config.task, config.classes, config.regression, config.hidden_units,
               id(x_train))
        trainer = self.trainers.build(config.model, context, key)
        return trainer, context

    def _task_data(self, config: FitConfig) -> ClientData | None:
        """Return the data for the run's task, or None for the synthetic task."""
        if config.task != self.task:
            held = (
                "no data (started for the synthetic task)"
                if self._data is None
                else f"data for task {self.task!r} ({self._data.description})"
            )
            raise DataError(
                f"run task is {config.task!r} but this client holds {held}"
            )
        return self._data

    def _inputs(self, config: FitConfig, data: ClientData) -> tuple[F32, F32]:
        """Return the train and validation inputs under the run's preprocessing.

        Without one (built-in data, or a coordinator that sends none) they are
        the data as loaded; the last run's inputs are kept, not recomputed.

        Raises:
            SchemaError: if the preprocessing does not fit this client's columns.
        """
        preprocess = config.preprocess
        if preprocess is None or data.raw_train is None or data.raw_val is None:
            return data.x_train, data.x_val
        if self._prepared is not None and self._prepared[0] == preprocess:
            return self._prepared[1], self._prepared[2]
        if len(preprocess.mean) != data.raw_train.shape[1]:
            raise SchemaError(
                f"the run's preprocessing is for {len(preprocess.mean)} columns,"
                f" this client holds {data.raw_train.shape[1]}"
            )
        x_train = preprocess.apply(data.raw_train, data.categories)
        x_val = preprocess.apply(data.raw_val, data.categories)
        self._prepared = (preprocess, x_train, x_val)
        return x_train, x_val

    @staticmethod
    def _targets(targets: npt.NDArray[np.float64] | None) -> npt.NDArray[np.float64]:
        """Return a regression run's labels, refused when they are not numbers."""
        if targets is None:
            raise SchemaError("the run is a regression and this client's labels"
                              " are not all numbers")
        return targets

    def _labels_for_run(
        self, config: FitConfig, y: npt.NDArray[np.int64]
    ) -> tuple[int, npt.NDArray[np.int64]]:
        """Map this client's label indices onto the run's class list."""
        assert self._data is not None
        if config.classes is None:
            raise SchemaError(f"the run of task {config.task!r} names no classes")
        try:
            own = self._data.schema  # only the classes come from the run
            run = Schema(own.feature_names, config.classes, own.categorical)
        except SchemaError as e:
            raise SchemaError(f"the run's schema is invalid: {e}") from None
        check_schema(run, self._data.schema)
        position = {label: k for k, label in enumerate(run.classes)}
        mapping = np.array([position[c] for c in self._data.classes], dtype=np.int64)
        return len(run.classes), mapping[y]
