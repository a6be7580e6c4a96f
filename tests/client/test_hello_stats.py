"""What a CSV site's hello tells of its data: its threshold, and what fits."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from fednet.client.main import load_client_data
from fednet.client.trainer import Trainer
from fednet.exceptions import ConfigError
from fednet.learning.datasets import load_csv
from fednet.protocol import MAX_HELLO_CHARS, Hello, serialize
from fednet.settings import ClientSettings
from tests.client.conftest import make_runner


def _write(path: Path, columns: int, rows: int) -> Path:
    rng = np.random.default_rng(0)
    lines = [",".join([f"f{i}" for i in range(columns)] + ["label"])]
    lines += [",".join([*map(repr, rng.random(columns).tolist()), "ab"[r % 2]])
              for r in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_histograms_too_long_for_a_hello_go_first(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """1,500 columns: with histograms the hello is too long, without them it fits."""
    trainer = Trainer(load_csv(_write(tmp_path / "wide.csv", 1500, 150), "label"))
    runner = make_runner("ws://127.0.0.1:9/ws")
    runner.trainer = trainer
    assert trainer.stats is not None and "histograms" in trainer.stats
    full = Hello(name="n", instance="i", num_examples=1, task="csv",
                 schema=trainer.schema.to_dict() if trainer.schema else None,
                 stats=trainer.stats)
    assert len(serialize(full)) > MAX_HELLO_CHARS

    with caplog.at_level(logging.WARNING):
        runner.check_hello()

    assert "histograms left out of the hello" in caplog.text
    assert "feature statistics left out" not in caplog.text
    hello = runner._hello()
    assert hello.stats is not None and "histograms" not in hello.stats
    assert hello.stats["count"] == trainer.stats["count"]
    assert len(serialize(hello)) <= MAX_HELLO_CHARS


def test_a_site_summarises_at_its_own_min_count(tmp_path: Path) -> None:
    """--min-count 3: the summary says so, and bins of 3 to 9 values may leave."""
    path = _write(tmp_path / "site.csv", 2, 40)
    settings = ClientSettings(data=path, label_column="label", min_count=3)

    data, _ = load_client_data(settings)

    assert data is not None and data.stats is not None
    assert data.stats.min_count == 3
    bins = data.stats.histograms[0].values()
    assert sum(bins) == 32 and min(bins) >= 3 and len(bins) > 32 // 10
    default, _ = load_client_data(ClientSettings(data=path, label_column="label"))
    assert default is not None and default.stats is not None
    assert default.stats.min_count == 10


def test_a_min_count_below_1_is_refused() -> None:
    with pytest.raises(ConfigError) as e:
        ClientSettings(dataset="digits", min_count=0)
    assert e.value.errors == {"min_count": "must be in [1, 1000000], got 0"}
