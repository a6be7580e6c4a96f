"""torch is optional: fednet imports without it and says so only on use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fednet.learning.trainers.base import TrainerContext
from fednet.learning.trainers.registry import TrainerNotFound, build_trainer
from fednet.learning.trainers.torch_adapter import TorchTrainer, TorchUnavailable

ROOT = Path(__file__).resolve().parents[2]


def _context() -> TrainerContext:
    x = np.zeros((8, 64), dtype=np.float32)
    y = np.arange(8, dtype=np.int64) % 2
    return TrainerContext(x, y, x, y, 2)


def test_importing_the_trainers_never_imports_torch() -> None:
    """Every trainers module, the adapter included, imports without loading torch."""
    code = (
        "import sys\n"
        "import fednet.learning.trainers.registry\n"
        "import fednet.learning.trainers.sklearn_adapter\n"
        "import fednet.learning.trainers.torch_adapter\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr


def test_torch_trainer_without_torch_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Using the adapter where torch is missing raises TorchUnavailable."""
    monkeypatch.setitem(sys.modules, "torch", None)

    with pytest.raises(TorchUnavailable, match=r"pip install 'fednet\[torch\]'"):
        TorchTrainer(object(), _context(), kind="m")


def test_a_torch_plugin_without_torch_is_unavailable_not_a_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A site's torch trainer fails to build with the reason; the site goes on."""
    monkeypatch.setitem(sys.modules, "torch", None)

    def factory(context: TrainerContext) -> TorchTrainer:
        return TorchTrainer(object(), context, kind="m")

    with pytest.raises(TrainerNotFound, match="TorchUnavailable: the PyTorch adapter"):
        build_trainer("digits_cnn", factory, _context())
