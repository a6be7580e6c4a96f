"""Checkpoint files of each run: the global model per round, states, the best model.

Every write is atomic and durable: a temporary file, fsync, rename, then an
fsync of the directory that holds the rename.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fednet.typing import NDArray, NDArrays


class CheckpointFiles:
    """The ``models/`` folder of a state dir (a part of :class:`Store`)."""

    models_dir: Path

    def _model_path(self, run_id: int, server_round: int, kind: str = "") -> Path:
        return self.models_dir / f"run-{run_id}-round-{server_round}{kind}.npz"

    def save_model(self, run_id: int, server_round: int, params: NDArrays) -> Path:
        """Write a checkpoint atomically and durably (temp file, fsync, rename).

        The models directory is fsynced after the rename, so once this returns
        a power cut cannot lose the checkpoint the round about to be recorded
        points at.

        Older checkpoints of the run are removed by :meth:`prune_models` once
        the round is committed, so a crash in between never loses the model of
        the last recorded round.
        """
        path = self._model_path(run_id, server_round)
        self._write_npz(path, {f"arr_{i}": p for i, p in enumerate(params)})
        return path

    def save_server_state(
        self, run_id: int, server_round: int, state: Mapping[str, NDArray]
    ) -> None:
        """Write a strategy's state (e.g. FedAdam's moments) as save_model does."""
        self._write_npz(self._model_path(run_id, server_round, ".state"), state)

    def _write_npz(self, path: Path, arrays: Mapping[str, Any]) -> None:
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        # The rename lives in the directory: durable only once it is synced.
        _fsync_dir(self.models_dir)

    def prune_models(self, run_id: int, keep_round: int) -> None:
        """Delete a run's checkpoints and states but ``keep_round``'s, durably."""
        pruned = False
        for path in self.models_dir.glob(f"run-{run_id}-round-*.npz"):
            if not path.name.startswith(f"run-{run_id}-round-{keep_round}."):
                path.unlink(missing_ok=True)
                pruned = True
        if pruned:
            _fsync_dir(self.models_dir)

    def keep_best(self, run_id: int, server_round: int) -> None:
        """Keep a round's checkpoint as the run's best model, durably.

        ``run-<id>-best-<round>.npz`` is a hard link to the checkpoint (no
        copy), so pruning the round's checkpoint later keeps it; call
        :meth:`prune_best` once the round is recorded.
        """
        path = self._best_path(run_id, server_round)
        tmp = path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        os.link(self._model_path(run_id, server_round), tmp)
        os.replace(tmp, path)
        _fsync_dir(self.models_dir)

    def prune_best(self, run_id: int, keep_round: int) -> None:
        """Delete the run's best models but ``keep_round``'s, durably."""
        for path in self.models_dir.glob(f"run-{run_id}-best-*.npz"):
            if path != self._best_path(run_id, keep_round):
                path.unlink(missing_ok=True)
        _fsync_dir(self.models_dir)

    def load_best_model(self, run_id: int, server_round: int) -> NDArrays | None:
        """Load the kept best model of a round, or None."""
        path = self.best_model_path(run_id, server_round)
        return _read_model(path) if path is not None else None

    def best_model_path(self, run_id: int, server_round: int) -> Path | None:
        """Return the kept best model of a round, or None."""
        path = self._best_path(run_id, server_round)
        return path if path.exists() else None

    def _best_path(self, run_id: int, server_round: int) -> Path:
        return self.models_dir / f"run-{run_id}-best-{server_round}.npz"

    def load_server_state(
        self, run_id: int, server_round: int
    ) -> dict[str, NDArray] | None:
        """Load a round's strategy state, or None when there is none."""
        path = self._model_path(run_id, server_round, ".state")
        if not path.exists():
            return None
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}

    def load_model(self, run_id: int, server_round: int) -> NDArrays | None:
        """Load a checkpoint, or return None when it does not exist."""
        path = self._model_path(run_id, server_round)
        return _read_model(path) if path.exists() else None


def _read_model(path: Path) -> NDArrays:
    """Load a model file's arrays in order (no pickle)."""
    with np.load(path, allow_pickle=False) as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


def _fsync_dir(directory: Path) -> None:
    """Flush a directory's entries (renames, unlinks) to disk."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
