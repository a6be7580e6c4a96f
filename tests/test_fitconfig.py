"""FitConfig: validated from JSON key by key, readable as the dict it travels as."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from fednet.exceptions import ProtocolError
from fednet.fitconfig import MAX_CLASSES, FitConfig

CONFIG = FitConfig(
    server_round=2,
    task="csv",
    model="mlp",
    local_epochs=3,
    batch_size=16,
    learning_rate=0.05,
    seed=7,
    hidden_units=32,
    classes=("no", "yes"),
)
JSON: dict[str, Any] = {
    "server_round": 2,
    "task": "csv",
    "model": "mlp",
    "local_epochs": 3,
    "batch_size": 16,
    "learning_rate": 0.05,
    "seed": 7,
    "hidden_units": 32,
    "classes": ["no", "yes"],
}


def test_to_dict_and_from_dict_are_inverse() -> None:
    """The JSON form lists the classes; it reads back equal."""
    assert CONFIG.to_dict() == JSON
    assert FitConfig.from_dict(JSON) == CONFIG


def test_synthetic_config_has_no_classes_on_the_wire() -> None:
    """classes=None (synthetic task) is left out of the JSON form."""
    synthetic = dataclasses.replace(CONFIG, task="synthetic", classes=None)
    data = synthetic.to_dict()
    assert "classes" not in data
    assert FitConfig.from_dict(data) == synthetic
    assert FitConfig.from_dict({**data, "classes": None}) == synthetic


def test_config_reads_as_a_mapping_of_its_json_form() -> None:
    """config["classes"] is a list and dict(config) is the JSON form."""
    assert CONFIG["classes"] == ["no", "yes"]
    assert CONFIG["learning_rate"] == 0.05
    assert dict(CONFIG) == JSON and len(CONFIG) == len(JSON)
    assert "rounds" not in CONFIG and CONFIG.get("rounds") is None
    with pytest.raises(KeyError):
        CONFIG["rounds"]


def test_unknown_keys_are_ignored() -> None:
    """Options of newer coordinators and RunConfig keys of older ones are dropped."""
    extra = {**JSON, "rounds": 10, "strategy": "fedavg", "min_clients": 2, "new": [1]}
    assert FitConfig.from_dict(extra) == CONFIG


def test_integer_learning_rate_becomes_a_float() -> None:
    """JSON has one number type: learning_rate 1 is the float 1.0."""
    config = FitConfig.from_dict({**JSON, "learning_rate": 1})
    assert config.learning_rate == 1.0 and isinstance(config.learning_rate, float)


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("server_round", 0, "must be at least 1"),
        ("server_round", "2", "must be an integer"),
        ("server_round", True, "must be an integer"),
        ("task", 3, "must be a string"),
        ("task", "t" * 257, "at most 256 characters"),
        ("model", None, "must be a string"),
        ("local_epochs", 0, "must be at least 1"),
        ("local_epochs", 1.5, "must be an integer"),
        ("batch_size", 0, "must be at least 1"),
        ("batch_size", 2**63, "must be at most"),
        ("learning_rate", 0, "greater than 0"),
        ("learning_rate", -0.1, "greater than 0"),
        ("learning_rate", "0.1", "finite number"),
        ("learning_rate", float("inf"), "finite number"),
        ("learning_rate", False, "finite number"),
        ("seed", -1, "must be at least 0"),
        ("hidden_units", 0, "must be at least 1"),
        ("classes", "no,yes", "must be a list"),
        ("classes", ["no", 1], "entry 1 must be a string"),
        ("classes", ["x" * 257], "entry 0 must be a string of at most 256"),
        ("classes", ["c"] * (MAX_CLASSES + 1), "at most 100000 strings"),
    ],
)
def test_malformed_value_raises_protocol_error_naming_the_key(
    key: str, value: Any, reason: str
) -> None:
    """Each key is checked for type and range; the error names key and reason."""
    with pytest.raises(ProtocolError, match=f"^config: invalid {key}: .*{reason}"):
        FitConfig.from_dict({**JSON, key: value})


@pytest.mark.parametrize("key", sorted(set(JSON) - {"classes"}))
def test_missing_key_is_named(key: str) -> None:
    """Every key but classes is required."""
    data = {k: v for k, v in JSON.items() if k != key}
    with pytest.raises(ProtocolError, match=f"config: missing field '{key}'"):
        FitConfig.from_dict(data)


def test_config_must_be_an_object() -> None:
    """A list or a string is not a config."""
    with pytest.raises(ProtocolError, match="config: must be a JSON object"):
        FitConfig.from_dict([JSON])
