"""Checkpoints on disk: durable before the round that points at them commits."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fednet.server.store import Store

Event = tuple[str, str]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """Return a store on a fresh state directory."""
    opened = Store(tmp_path / "state")
    yield opened
    opened.close()


@pytest.fixture
def disk_events(monkeypatch: pytest.MonkeyPatch) -> list[Event]:
    """Record renames, unlinks and fsyncs (by the path of the fsynced fd)."""
    events: list[Event] = []
    fsync, replace, unlink = os.fsync, os.replace, os.unlink

    def recording_fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        fsync(fd)

    def recording_replace(src: str, dst: str) -> None:
        replace(src, dst)
        events.append(("replace", str(dst)))

    def recording_unlink(path: str, *args: object, **kwargs: object) -> None:
        unlink(path)
        events.append(("unlink", str(path)))

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    monkeypatch.setattr(os, "unlink", recording_unlink)
    return events


def test_save_model_fsyncs_the_models_directory_after_the_rename(
    store: Store, disk_events: list[Event]
) -> None:
    """The directory holding the renamed checkpoint is fsynced before it returns."""
    path = store.save_model(1, 3, [np.arange(4, dtype=np.float32)])

    models = str(store.models_dir.resolve())
    renamed = disk_events.index(("replace", str(path)))
    assert ("fsync", models) in disk_events[renamed + 1 :]


def test_prune_models_fsyncs_the_models_directory_after_unlinking(
    store: Store, disk_events: list[Event]
) -> None:
    """Deleting older checkpoints is followed by an fsync of their directory."""
    old = store.save_model(1, 1, [np.zeros(2, dtype=np.float32)])
    store.save_model(1, 2, [np.ones(2, dtype=np.float32)])
    disk_events.clear()

    store.prune_models(1, keep_round=2)

    assert not old.exists()
    unlinked = disk_events.index(("unlink", str(old)))
    models = str(store.models_dir.resolve())
    assert ("fsync", models) in disk_events[unlinked + 1 :]
