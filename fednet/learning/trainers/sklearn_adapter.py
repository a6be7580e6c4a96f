"""scikit-learn estimators whose parameters are arrays, as trainers of the protocol.

Linear models (``SGDClassifier``, ``SGDRegressor``, ``LogisticRegression``:
``coef_``, ``intercept_``) and multi-layer perceptrons (``MLPClassifier``,
``MLPRegressor``: ``coefs_``, ``intercepts_``). Their arrays are laid out
from the declared classes and feature count before any data is seen, so the
architecture (and its fingerprint) is known at ``hello``. A round trains
``epochs`` calls of ``partial_fit`` (SGD, MLP: one pass each) or one warm
started ``fit`` of at most ``epochs`` iterations (LogisticRegression).
Everything but the epochs is the estimator's own settings. Parameters are
float64, as scikit-learn computes.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.base import clone, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, SGDClassifier, SGDRegressor
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error, r2_score
from sklearn.neural_network import MLPClassifier, MLPRegressor

from fednet.learning.trainers.base import (
    Architecture,
    EvaluateResult,
    FitResult,
    TrainConfig,
    TrainerContext,
    check_parameters,
)
from fednet.typing import Metrics, NDArray, NDArrays

LINEAR = (SGDClassifier, SGDRegressor, LogisticRegression)
MLP = (MLPClassifier, MLPRegressor)
F64 = npt.NDArray[np.float64]


def _kind(est: Any) -> str:
    """Name the estimator with what changes its computation but not its shapes."""
    name = f"sklearn.{type(est).__name__}"
    if isinstance(est, (SGDClassifier, SGDRegressor)):
        return f"{name}.{est.loss}"
    if isinstance(est, MLP):
        return f"{name}.{est.activation}"
    return name


def _check_estimator(est: Any, context: TrainerContext) -> None:
    if not isinstance(est, LINEAR + MLP):
        names = ", ".join(c.__name__ for c in LINEAR + MLP)
        raise ValueError(f"cannot federate a {type(est).__name__}; supported: {names}")
    if is_classifier(est) != (context.num_classes is not None):
        task = "classification" if context.num_classes else "regression"
        raise ValueError(f"a {type(est).__name__} does not fit a {task} context")
    if isinstance(est, MLP) and (est.solver == "lbfgs" or est.early_stopping):
        raise ValueError(
            "an MLP trains by partial_fit: solver sgd or adam, no early_stopping"
        )
    if isinstance(est, SGDClassifier | SGDRegressor) and est.average:
        raise ValueError("averaged SGD keeps a second model; use average=False")
    if isinstance(est, LogisticRegression) and est.solver == "liblinear":
        raise ValueError("liblinear cannot warm start; choose another solver")


class SklearnTrainer:
    """A scikit-learn estimator trained on one site's data.

    Args:
        estimator: an unfitted supported estimator; a clone is trained.
        context: the site's data (classification for classifiers, else
            regression).
        init_seed: seed of the MLP's initial weights (linear models start at 0).

    Raises:
        ValueError: on an unsupported estimator or setting, or a context of
            the other task.
    """

    def __init__(
        self, estimator: Any, context: TrainerContext, *, init_seed: int = 0
    ) -> None:
        _check_estimator(estimator, context)
        self._est = clone(estimator)
        self._ctx = context
        self._x_train = np.asarray(context.x_train, dtype=np.float64)
        self._x_val = np.asarray(context.x_val, dtype=np.float64)
        k = context.num_classes
        self._classes = None if k is None else np.arange(k)
        self._layout(init_seed)
        names = ["coef", "intercept"]
        if isinstance(self._est, MLP):
            depth = len(self._est.coefs_)
            names = [f"{a}_{i}" for i in range(depth) for a in ("coef", "intercept")]
        self._arch = Architecture.from_arrays(
            _kind(self._est), names, self.get_parameters()
        )

    def _layout(self, init_seed: int) -> None:
        """Give the estimator its arrays from the declared classes and features."""
        est, n = self._est, self._ctx.num_features
        if isinstance(est, MLP):
            self._prime_mlp(init_seed)
            return
        if self._classes is None:
            est.coef_, est.intercept_ = np.zeros(n), np.zeros(1)
        else:
            # Two classes: one row (the positive class), as scikit-learn lays it out.
            rows = 1 if len(self._classes) == 2 else len(self._classes)
            est.coef_, est.intercept_ = np.zeros((rows, n)), np.zeros(rows)
            est.classes_ = self._classes
        est.n_features_in_ = n

    def _prime_mlp(self, init_seed: int) -> None:
        """Lay out the MLP with one step on zeros, then draw seeded Glorot weights.

        The step only makes scikit-learn allocate its state; its weights and
        optimiser state are discarded.
        """
        est, n = self._est, self._ctx.num_features
        with warnings.catch_warnings():
            # A batch_size above the few priming rows is clipped, with a warning.
            warnings.simplefilter("ignore", UserWarning)
            if self._classes is None:
                y0: Any = np.zeros((1,) + self._ctx.y_train.shape[1:])
                est.partial_fit(np.zeros((1, n)), y0)
            else:
                x0 = np.zeros((len(self._classes), n))
                est.partial_fit(x0, self._classes, classes=self._classes)
        rng = np.random.RandomState(init_seed)
        # Glorot & Bengio 2010, as MLP._init_coef: factor 2 for logistic units.
        factor = 2.0 if est.activation == "logistic" else 6.0
        for i, coef in enumerate(est.coefs_):
            bound = np.sqrt(factor / sum(coef.shape))
            est.coefs_[i] = rng.uniform(-bound, bound, coef.shape)
            est.intercepts_[i] = rng.uniform(-bound, bound, coef.shape[1])
        vars(est).pop("_optimizer", None)
        est.t_, est.n_iter_, est.loss_curve_ = 0, 0, []

    def architecture(self) -> Architecture:
        """Return ``coef, intercept`` or ``coef_0, intercept_0, ...`` (float64)."""
        return self._arch

    def get_parameters(self) -> NDArrays:
        """Return copies of the estimator's arrays, in the architecture's order."""
        est = self._est
        if isinstance(est, MLP):
            pairs = zip(est.coefs_, est.intercepts_)
            return [np.array(a, dtype=np.float64) for pair in pairs for a in pair]
        return [np.array(est.coef_, np.float64), np.array(est.intercept_, np.float64)]

    def set_parameters(self, parameters: NDArrays) -> None:
        """Copy ``parameters`` into the estimator (which updates arrays in place).

        Raises:
            ValueError: if they do not match the architecture.
        """
        check_parameters(self._arch, parameters)
        copies = [np.array(p, dtype=np.float64, order="C") for p in parameters]
        if isinstance(self._est, MLP):
            self._est.coefs_, self._est.intercepts_ = copies[0::2], copies[1::2]
        else:
            self._est.coef_, self._est.intercept_ = copies

    def fit(self, parameters: NDArrays, config: TrainConfig) -> FitResult:
        """Train ``config.epochs`` passes from ``parameters`` on the train split.

        Returns:
            ``(new_parameters, num_examples, train metrics)``: accuracy (and
            log loss) for classifiers, mse and r2 for regressors.

        Raises:
            ValueError: on parameters that do not match, ``proximal_mu``
                (scikit-learn has no proximal term), or divergence.
        """
        if config.proximal_mu:
            raise ValueError("the scikit-learn adapter cannot honour proximal_mu")
        self.set_parameters(parameters)
        seeds = np.random.SeedSequence(config.local_seed(self._ctx.site_number))
        states = seeds.generate_state(config.epochs, dtype=np.uint32) >> 1
        x, y, est = self._x_train, self._ctx.y_train, self._est
        if isinstance(est, LogisticRegression):
            self._fit_warm(config.epochs, int(states[0]))
        else:
            for state in states:
                est.set_params(random_state=int(state))
                if self._classes is None:
                    est.partial_fit(x, y)
                else:
                    est.partial_fit(x, y, classes=self._classes)
        new = self.get_parameters()
        if not all(np.isfinite(p).all() for p in new):
            raise ValueError("training diverged to non-finite parameters")
        metrics = {f"train_{k}": v for k, v in self._measure(x, y)[1].items()}
        return new, self._ctx.num_examples, metrics

    def _fit_warm(self, epochs: int, state: int) -> None:
        """Warm-start ``fit`` for ``epochs`` iterations on all declared classes.

        A class missing at this site gets one zero-weight row, so the solver
        keeps every class's coefficients without the row counting in the loss.
        """
        assert self._classes is not None
        missing = np.setdiff1d(self._classes, self._ctx.y_train)
        x = np.vstack([self._x_train, np.zeros((len(missing), self._x_train.shape[1]))])
        y = np.concatenate([self._ctx.y_train, missing])
        weight = np.concatenate([np.ones(len(self._x_train)), np.zeros(len(missing))])
        self._est.set_params(warm_start=True, max_iter=epochs, random_state=state)
        with warnings.catch_warnings():
            # A few iterations per round never converge, by design.
            warnings.simplefilter("ignore", ConvergenceWarning)
            self._est.fit(x, y, sample_weight=weight)

    def evaluate(self, parameters: NDArrays, config: TrainConfig) -> EvaluateResult:
        """Measure ``parameters`` on the validation split (and keep them).

        Returns:
            ``(loss, num_examples, metrics)``: loss is the log loss (classifiers
            with ``predict_proba``), the zero-one loss (other classifiers) or
            the mean squared error; metrics hold ``accuracy``, or ``mse`` and
            ``r2``.

        Raises:
            ValueError: on parameters that do not match, or no validation rows.
        """
        self.set_parameters(parameters)
        if not len(self._x_val):
            raise ValueError("no validation examples")
        loss, metrics = self._measure(self._x_val, self._ctx.y_val)
        return loss, len(self._x_val), metrics

    def predict(self, parameters: NDArrays, x: NDArray) -> NDArray:
        """Return class probabilities ``(n, classes)``, or regression values ``(n,)``.

        A classifier without ``predict_proba`` (hinge loss) gives its predicted
        class probability 1: its confusion matrix is exact, its AUROC that of
        hard decisions.
        """
        self.set_parameters(parameters)
        xs = np.asarray(x, dtype=np.float64)
        if self._classes is None:
            return np.asarray(self._est.predict(xs), dtype=np.float64)
        if hasattr(self._est, "predict_proba"):
            return np.asarray(self._est.predict_proba(xs), dtype=np.float64)
        onehot = np.zeros((len(xs), len(self._classes)))
        onehot[np.arange(len(xs)), self._est.predict(xs)] = 1.0
        return onehot

    def _measure(self, x: F64, y: Any) -> tuple[float, Metrics]:
        est = self._est
        if self._classes is None:
            predicted = est.predict(x)
            mse = float(mean_squared_error(y, predicted))
            metrics = {"mse": mse}
            if len(y) > 1:
                metrics["r2"] = float(r2_score(y, predicted))
            return mse, metrics
        accuracy = float(accuracy_score(y, est.predict(x)))
        if not hasattr(est, "predict_proba"):
            return 1.0 - accuracy, {"accuracy": accuracy}
        loss = float(log_loss(y, est.predict_proba(x), labels=self._classes))
        return loss, {"accuracy": accuracy, "loss": loss}
