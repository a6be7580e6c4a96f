"""Finding trainers by name: built-ins, module:attribute paths and entry points."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fednet.learning.trainers.base import Trainer, TrainerContext
from fednet.learning.trainers.builtin import BuiltinTrainer
from fednet.learning.trainers.registry import (
    ENTRY_POINT_GROUP,
    TrainerNotFound,
    announce,
    available_trainers,
    find_factory,
    load_site_trainers,
    load_trainer,
    pick_trainer,
    site_trainer_names,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

PLUGIN = textwrap.dedent(
    """
    from fednet.learning.trainers.builtin import BuiltinTrainer, mlp_factory

    NOT_CALLABLE = 42
    mlp32 = mlp_factory(32)

    def not_a_trainer(context):
        return object()

    def broken(context):
        raise RuntimeError("no GPU here")

    class Factories:
        @staticmethod
        def logreg(context):
            return BuiltinTrainer("logreg", context)
    """
)


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Put a site module and a dist-info with entry points on sys.path."""
    name = f"site_plugin_{abs(hash(tmp_path)) % 10**8}"
    (tmp_path / f"{name}.py").write_text(PLUGIN)
    (tmp_path / f"raising_{name}.py").write_text("raise RuntimeError('bad import')\n")
    dist = tmp_path / "site_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: site-plugin\n")
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nmlp32 = {name}:mlp32\n"
        f"gone = no_such_module_xyz:make\nbroken = {name}:broken\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop(name, None)
    sys.modules.pop(f"raising_{name}", None)


def _module(plugin_dir: Path) -> str:
    return next(plugin_dir.glob("site_plugin_*.py")).stem


@pytest.fixture
def context() -> TrainerContext:
    """Return a small three-class context."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((24, 4)).astype(np.float32)
    y = np.arange(24, dtype=np.int64) % 3
    return TrainerContext(x, y, x[:6], y[:6], 3)


def test_builtin_names_come_first(context: TrainerContext) -> None:
    """logreg and mlp are found without any entry point or path."""
    trainer = load_trainer("logreg", context)

    assert isinstance(trainer, BuiltinTrainer) and isinstance(trainer, Trainer)
    assert trainer.architecture().kind == "fednet.logreg"
    assert {"logreg", "mlp"} <= set(available_trainers())


def test_module_attribute_path_loads_a_factory(
    plugin_dir: Path, context: TrainerContext
) -> None:
    """``module:attribute`` (dotted attributes too) names a site's factory."""
    module = _module(plugin_dir)

    mlp32 = load_trainer(f"{module}:mlp32", context)
    logreg = load_trainer(f"{module}:Factories.logreg", context)

    assert mlp32.architecture().shapes[0] == (4, 32)
    assert logreg.architecture().kind == "fednet.logreg"


def test_entry_point_is_found_by_name(
    plugin_dir: Path, context: TrainerContext
) -> None:
    """An installed distribution's fednet.trainers entry point is found by name."""
    trainer = load_trainer("mlp32", context)

    assert trainer.architecture().shapes[0] == (4, 32)
    assert "mlp32" in available_trainers()


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("no_such_module_xyz:make", "cannot import module 'no_such_module_xyz'"),
        ("{module}:missing", "has no attribute 'missing'"),
        ("{module}:NOT_CALLABLE", "names an int, not a factory"),
        ("{module}:not_a_trainer", "returned an object, not a Trainer"),
        ("{module}:broken", "failed to build: RuntimeError: no GPU here"),
        ("raising_{module}:make", "cannot import .*RuntimeError: bad import"),
        ("nobody", "no trainer named 'nobody'"),
        ("gone", "cannot be loaded"),
        ("broken", "failed to build"),
        ("os.path:join()", "not of the form"),
        ("../etc/passwd", "malformed"),
        ("", "malformed"),
    ],
)
def test_unusable_names_raise_trainer_not_found_with_the_reason(
    plugin_dir: Path, context: TrainerContext, name: str, reason: str
) -> None:
    """Each way a name can fail says why, as TrainerNotFound."""
    with pytest.raises(TrainerNotFound, match=reason.replace("(", r"\(")):
        load_trainer(name.format(module=_module(plugin_dir)), context)


def test_find_factory_does_not_call_the_factory(plugin_dir: Path) -> None:
    """Finding a factory imports it but builds nothing (a broken one is found)."""
    factory = find_factory(f"{_module(plugin_dir)}:broken")

    assert callable(factory)


def test_site_trainer_names_parse_the_trainer_flags(plugin_dir: Path) -> None:
    """``--trainer`` takes module:attribute or name=module:attribute."""
    module = _module(plugin_dir)

    names = site_trainer_names([f"{module}:mlp32", f"narrow={module}:mlp32"])

    assert names[f"{module}:mlp32"] == f"{module}:mlp32"
    assert names["narrow"] == f"{module}:mlp32"
    assert names["logreg"] == "logreg"
    with pytest.raises(TrainerNotFound, match="given twice"):
        site_trainer_names([f"logreg={module}:mlp32"])
    with pytest.raises(TrainerNotFound, match="is not module:attribute"):
        site_trainer_names(["just_a_name"])


def test_load_site_trainers_leaves_broken_ones_out(
    plugin_dir: Path, context: TrainerContext
) -> None:
    """A site with a broken plug-in still offers the others, with the reasons."""
    trainers, failures = load_site_trainers(site_trainer_names(), context)

    assert {"logreg", "mlp", "mlp32"} <= set(trainers)
    assert {"broken", "gone"} <= set(failures)
    assert "no GPU here" in failures["broken"]


def test_pick_trainer_only_selects_among_loaded_ones(
    plugin_dir: Path, context: TrainerContext
) -> None:
    """A run's model name is looked up, never imported, even if it is a path."""
    trainers, _ = load_site_trainers({"logreg": "logreg"}, context)

    assert pick_trainer(trainers, "logreg") is trainers["logreg"]
    with pytest.raises(TrainerNotFound, match="this site has no trainer"):
        pick_trainer(trainers, f"{_module(plugin_dir)}:mlp32")
    assert _module(plugin_dir) not in sys.modules


def test_announce_lists_names_and_fingerprints(context: TrainerContext) -> None:
    """hello's trainers: one {name, fingerprint} per loaded trainer, by name."""
    trainers, _ = load_site_trainers({"mlp": "mlp", "logreg": "logreg"}, context)

    announced = announce(trainers)

    assert [t["name"] for t in announced] == ["logreg", "mlp"]
    assert announced[1]["fingerprint"] == trainers["mlp"].architecture().fingerprint


def test_sklearn_example_loads_by_path(
    monkeypatch: pytest.MonkeyPatch, context: TrainerContext
) -> None:
    """The scikit-learn example site package works as a module:attribute path."""
    monkeypatch.syspath_prepend(str(EXAMPLES / "sklearn-pipeline"))

    trainer = load_trainer("fednet_sklearn_pipeline:make_trainer", context)

    assert trainer.architecture().kind == "sklearn.SGDClassifier.log_loss"
    sys.modules.pop("fednet_sklearn_pipeline", None)
