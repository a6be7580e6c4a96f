"""A logistic-loss SGDClassifier over the run's features, as a fednet trainer.

The run's shared preprocessing (standardising, one-hot categories) is the
pipeline's first step and happens in fednet, the same at every site; this
package only declares the estimator that learns on its output.
"""

from __future__ import annotations

from sklearn.linear_model import SGDClassifier

from fednet.learning.trainers.base import TrainerContext
from fednet.learning.trainers.sklearn_adapter import SklearnTrainer


def make_estimator() -> SGDClassifier:
    """Return the estimator every site trains (same settings everywhere)."""
    return SGDClassifier(loss="log_loss", alpha=1e-4, random_state=0)


def make_trainer(context: TrainerContext) -> SklearnTrainer:
    """Return the trainer on a site's data (the entry point's factory).

    Raises:
        ValueError: if the site's data are for regression.
    """
    return SklearnTrainer(make_estimator(), context)
