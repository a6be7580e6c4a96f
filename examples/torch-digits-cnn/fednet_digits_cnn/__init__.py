"""A small CNN for scikit-learn's 8x8 digits, as a fednet trainer (``digits_cnn``)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from fednet.learning.trainers.base import TrainerContext
from fednet.learning.trainers.torch_adapter import TorchTrainer

SIDE = 8  # the digits are 8x8 grey images, flattened to 64 features


class DigitsCNN(nn.Module):
    """Two 3x3 convolutions, a 2x2 max-pool and two dense layers."""

    def __init__(self, num_classes: int, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(2 * width * (SIDE // 2) ** 2, 64),
            nn.ReLU(),
            nn.Linear(64, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the class logits of flattened 8x8 images."""
        return self.head(self.features(x.view(-1, 1, SIDE, SIDE)))


def _sgd_with_momentum(params: Any, lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


def make_trainer(context: TrainerContext) -> TorchTrainer:
    """Return the CNN trainer on a site's digits (the entry point's factory).

    Every site draws the same initial weights (seed 0), though a run takes
    them from the coordinator or from one site anyway.

    Raises:
        ValueError: if the data are not 64 features with class labels.
    """
    if context.num_classes is None or context.num_features != SIDE * SIDE:
        raise ValueError("digits_cnn needs 8x8 images (64 features) and classes")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module = DigitsCNN(context.num_classes)
    return TorchTrainer(
        module, context, kind="digits_cnn", optimizer_factory=_sgd_with_momentum
    )
