"""Architecture descriptions: hostile input, fingerprints, parameter checks."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from fednet.learning.trainers.architecture import (
    MAX_ARRAYS,
    MAX_ELEMENTS,
    Architecture,
    check_parameters,
    name_parameters,
)
from fednet.learning.trainers.base import TrainConfig, TrainerContext
from fednet.learning.trainers.builtin import BuiltinTrainer


def _arch() -> Architecture:
    return Architecture(
        kind="fednet.logreg",
        names=("W", "b"),
        shapes=((64, 10), (10,)),
        dtypes=("float32", "float32"),
    )


def _entry(**overrides: Any) -> dict[str, Any]:
    return {"name": "W", "shape": [2, 3], "dtype": "float32", **overrides}


def _context(num_features: int = 5, num_classes: int = 3) -> TrainerContext:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, num_features)).astype(np.float32)
    y = np.arange(30, dtype=np.int64) % num_classes
    return TrainerContext(x, y, x[:9], y[:9], num_classes)


def test_architecture_round_trips_through_json() -> None:
    """to_dict, JSON and from_dict give back an equal architecture."""
    arch = _arch()

    back = Architecture.from_dict(json.loads(json.dumps(arch.to_dict())))

    assert back == arch
    assert back.fingerprint == arch.fingerprint


def test_fingerprint_is_a_sha256_of_the_canonical_description() -> None:
    """The fingerprint is 64 hex digits and depends on kind, names, shapes, dtypes."""
    arch = _arch()
    variants = [
        Architecture("fednet.other", arch.names, arch.shapes, arch.dtypes),
        Architecture(arch.kind, ("W", "bias"), arch.shapes, arch.dtypes),
        Architecture(arch.kind, arch.names, ((64, 9), (9,)), arch.dtypes),
        Architecture(arch.kind, arch.names, arch.shapes, ("float64", "float32")),
    ]

    assert len(arch.fingerprint) == 64 and int(arch.fingerprint, 16) >= 0
    assert len({arch.fingerprint, *(v.fingerprint for v in variants)}) == 5


def test_fingerprint_changes_with_the_mlp_hidden_size() -> None:
    """Two sites whose MLPs differ only in hidden width announce different prints."""
    context = _context()

    wide = BuiltinTrainer("mlp", context, hidden_units=64).architecture()
    narrow = BuiltinTrainer("mlp", context, hidden_units=32).architecture()

    assert wide.kind == narrow.kind
    assert wide.fingerprint != narrow.fingerprint


def test_fingerprint_ignores_the_parameter_values() -> None:
    """Two trainers of one architecture but other initial weights match."""
    context = _context()

    first = BuiltinTrainer("mlp", context, init_seed=1).architecture()
    second = BuiltinTrainer("mlp", context, init_seed=2).architecture()

    assert first.fingerprint == second.fingerprint


HOSTILE: list[tuple[str, Any]] = [
    ("not an object", [1, 2]),
    ("no arrays", {"kind": "k"}),
    ("arrays not a list", {"kind": "k", "arrays": {"W": 1}}),
    ("too many arrays", {"kind": "k", "arrays": [_entry()] * (MAX_ARRAYS + 1)}),
    ("unknown field", {"kind": "k", "arrays": [], "code": "import os"}),
    ("entry not an object", {"kind": "k", "arrays": ["W"]}),
    ("entry extra key", {"kind": "k", "arrays": [{**_entry(), "x": 1}]}),
    ("entry missing key", {"kind": "k", "arrays": [{"name": "W", "shape": []}]}),
    ("kind missing", {"arrays": []}),
    ("kind not a string", {"kind": 7, "arrays": []}),
    ("kind empty", {"kind": "", "arrays": []}),
    ("kind with spaces", {"kind": "a b", "arrays": []}),
    ("kind too long", {"kind": "k" * 257, "arrays": []}),
    ("name empty", {"kind": "k", "arrays": [_entry(name="")]}),
    ("name too long", {"kind": "k", "arrays": [_entry(name="n" * 257)]}),
    ("name not a string", {"kind": "k", "arrays": [_entry(name=3)]}),
    ("name control char", {"kind": "k", "arrays": [_entry(name="a\x1b[2J")]}),
    ("names repeat", {"kind": "k", "arrays": [_entry(), _entry()]}),
    ("rank too high", {"kind": "k", "arrays": [_entry(shape=[1] * 9)]}),
    ("huge shape list", {"kind": "k", "arrays": [_entry(shape=[1] * 10**6)]}),
    ("shape not a list", {"kind": "k", "arrays": [_entry(shape="2,3")]}),
    ("negative size", {"kind": "k", "arrays": [_entry(shape=[-1])]}),
    ("float size", {"kind": "k", "arrays": [_entry(shape=[2.0])]}),
    ("bool size", {"kind": "k", "arrays": [_entry(shape=[True])]}),
    ("size too big", {"kind": "k", "arrays": [_entry(shape=[10**400])]}),
    ("elements overflow", {"kind": "k", "arrays": [_entry(shape=[2**16] * 3)]}),
    (
        "total overflows",
        {
            "kind": "k",
            "arrays": [
                _entry(name="a", shape=[2**30]),
                _entry(name="b", shape=[2**30]),
                _entry(name="c", shape=[1]),
            ],
        },
    ),
    ("dtype not allowed", {"kind": "k", "arrays": [_entry(dtype="object")]}),
    ("dtype complex", {"kind": "k", "arrays": [_entry(dtype="complex64")]}),
    ("dtype not a string", {"kind": "k", "arrays": [_entry(dtype=["float32"])]}),
    (
        "fingerprint forged",
        {"kind": "k", "arrays": [_entry()], "fingerprint": "0" * 64},
    ),
]


@pytest.mark.parametrize("data", [d for _, d in HOSTILE], ids=[n for n, _ in HOSTILE])
def test_hostile_descriptions_raise_value_error(data: Any) -> None:
    """Each malformed or oversized description is refused with a ValueError."""
    with pytest.raises(ValueError, match="architecture|arrays\\["):
        Architecture.from_dict(data)


def test_largest_allowed_architecture_is_accepted_without_allocating() -> None:
    """A description of exactly MAX_ELEMENTS numbers is valid (nothing is built)."""
    data = {"kind": "k", "arrays": [_entry(shape=[2**16, 2**15])]}

    arch = Architecture.from_dict(data)

    assert arch.num_elements == MAX_ELEMENTS


def test_check_parameters_names_the_first_mismatch() -> None:
    """A wrong count, shape or dtype is reported with the array's name."""
    arch = _arch()
    good = [np.zeros((64, 10), np.float32), np.zeros(10, np.float32)]
    check_parameters(arch, good)

    with pytest.raises(ValueError, match="takes 2 arrays, got 1"):
        check_parameters(arch, good[:1])
    with pytest.raises(ValueError, match=r"b: expected float32 \(10,\), got float32"):
        check_parameters(arch, [good[0], np.zeros(9, np.float32)])
    with pytest.raises(ValueError, match="W: expected float32 .*got float64"):
        check_parameters(arch, [good[0].astype(np.float64), good[1]])
    with pytest.raises(ValueError, match="W: expected a NumPy array"):
        check_parameters(arch, [good[0].tolist(), good[1]])  # type: ignore[list-item]


def test_name_parameters_pairs_arrays_with_their_names() -> None:
    """Parameters by name, in the architecture's order, checked first."""
    arch = _arch()
    arrays = [np.zeros((64, 10), np.float32), np.ones(10, np.float32)]

    named = name_parameters(arch, arrays)

    assert list(named) == ["W", "b"] and named["b"] is arrays[1]
    with pytest.raises(ValueError, match="takes 2 arrays"):
        name_parameters(arch, arrays[:1])


def test_from_arrays_describes_the_arrays() -> None:
    """from_arrays reads shapes and dtype names; counts must agree."""
    arrays = [np.zeros((2, 3), np.float64), np.zeros((), np.int64)]

    arch = Architecture.from_arrays("torch.m", ["w", "n"], arrays)

    assert arch.shapes == ((2, 3), ()) and arch.dtypes == ("float64", "int64")
    with pytest.raises(ValueError, match="1 names for 2 arrays"):
        Architecture.from_arrays("torch.m", ["w"], arrays)


@pytest.mark.parametrize(
    "fields",
    [{"epochs": 0}, {"batch_size": 0}, {"learning_rate": 0.0}, {"proximal_mu": -1.0}],
)
def test_train_config_refuses_values_out_of_range(fields: dict[str, Any]) -> None:
    """Non-positive epochs, batch size, learning rate or negative mu are refused."""
    with pytest.raises(ValueError, match="need"):
        TrainConfig(**fields)


def test_train_config_extra_is_read_only_and_typed() -> None:
    """extra holds scalars only and cannot be changed after construction."""
    config = TrainConfig(extra={"momentum": 0.9, "tag": "a"})

    with pytest.raises(TypeError):
        config.extra["momentum"] = 0.0  # type: ignore[index]
    with pytest.raises(ValueError, match="extra"):
        TrainConfig(extra={"bad": [1, 2]})  # type: ignore[dict-item]


def test_trainer_context_refuses_inconsistent_data() -> None:
    """Row counts, widths, feature names and label ranges are checked."""
    ctx = _context()

    with pytest.raises(ValueError, match="one target per row"):
        TrainerContext(ctx.x_train, ctx.y_train[:-1], ctx.x_val, ctx.y_val, 3)
    with pytest.raises(ValueError, match="labels must be in 0..1"):
        TrainerContext(ctx.x_train, ctx.y_train, ctx.x_val, ctx.y_val, 2)
    with pytest.raises(ValueError, match="feature names"):
        TrainerContext(ctx.x_train, ctx.y_train, ctx.x_val, ctx.y_val, 3, ("a",))
