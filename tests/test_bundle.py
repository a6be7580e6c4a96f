"""Bundles: what a file must be before fednet trusts it, and predictions from it."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fednet import bundle as bundle_module
from fednet.bundle import BundleError, build_bundle, read_bundle
from fednet.exceptions import DataError
from fednet.learning import models
from fednet.learning.preprocess import Preprocess
from fednet.predict import predict_file
from fednet.views import PrivacyView, RunView

SCHEMA = {"feature_names": ["age", "sex"], "classes": ["no", "yes"],
          "categorical": ["sex"]}
PRE = Preprocess(np.array([40.0, 0.0]), np.array([10.0, 1.0]), vocab={1: ("F", "M")})


def _bundle_bytes() -> bytes:
    privacy = PrivacyView(False, None, 0, 3.5, 1e-5, 8.0)
    run = RunView(id=7, status="finished", config={"model": "logreg", "task": "csv"},
                  schema={**SCHEMA, "preprocess": PRE.to_dict()}, error=None,
                  created_at=0.0, started_at=0.0, finished_at=1.0,
                  completed_rounds=0, rounds=(), privacy=privacy)
    params = models.init_params("logreg", PRE.width, 2, seed=1)
    return build_bundle(run, "last", 0, params, PRE)


def _rezip(data: bytes, **members: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as old:
        contents = {name: old.read(name) for name in old.namelist()}
    contents.update(members)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as new:
        for name, raw in contents.items():
            new.writestr(name, raw)
    return out.getvalue()


def test_a_bundle_reads_back_with_its_schema_and_model() -> None:
    bundle = read_bundle(_bundle_bytes())

    assert bundle.schema.categorical == ("sex",) and bundle.preprocess == PRE
    assert bundle.meta["input_names"] == ["age", "sex=F", "sex=M", "sex=(other)"]
    assert bundle.meta["privacy"]["epsilon"] == 3.5  # spent; 8.0 the budget
    labels, probabilities = bundle.predict(np.array([[30.0, 1.0]]), {1: ("F", "M")})
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    assert labels.shape == (1,)


def test_a_tampered_or_malformed_bundle_is_refused_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    good = _bundle_bytes()
    meta = json.loads(zipfile.ZipFile(io.BytesIO(good)).read("bundle.json"))
    cases = [
        (b"not a zip", "not a bundle"),
        (_rezip(good, **{"model.npz": b"x"}), "does not match the bundle's checksum"),
        (_rezip(good, **{"bundle.json": b"{"}), "not JSON"),
        (_rezip(good, **{"bundle.json": b'{"format": "other"}'}), "not a fednet"),
        (_rezip(good, **{"bundle.json": json.dumps(
            {**meta, "classes": ["no", "yes", "maybe"]}).encode()}), "malformed"),
    ]
    for data, fragment in cases:
        with pytest.raises(BundleError, match=fragment):
            read_bundle(data)
    monkeypatch.setattr(bundle_module, "MAX_MODEL_BYTES", 100)
    with pytest.raises(BundleError, match="model.npz is .* bytes, at most 100"):
        read_bundle(good)


def test_predict_refuses_other_columns_and_unknown_labels(tmp_path: Path) -> None:
    bundle = read_bundle(_bundle_bytes())
    other = tmp_path / "other.csv"
    other.write_text("age,gender\n30,F\n")
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("age,sex,label\n30,F,no\n31,M,perhaps\n")

    with pytest.raises(DataError, match="missing columns 'sex'"):
        predict_file(bundle, other, None)
    with pytest.raises(DataError, match="line 3: label 'perhaps' is not one of"):
        predict_file(bundle, unknown, "label")


def test_predict_reads_a_column_as_the_model_was_trained(tmp_path: Path) -> None:
    """A categorical column of digits in a 2-row file stays categorical."""
    bundle = read_bundle(_bundle_bytes())
    data = tmp_path / "data.csv"
    data.write_text("age,sex,label\n30,M,no\n50,3,yes\n")

    scored = predict_file(bundle, data, "label")

    inputs = bundle.preprocess.apply(np.array([[30.0, 1.0], [50.0, 0.0]]),
                                     {1: ("3", "M")})
    np.testing.assert_array_equal(inputs[:, 1:], [[0, 1, 0], [0, 0, 1]])
    expected = models.predict_proba("logreg", bundle.parameters, inputs).argmax(1)
    np.testing.assert_array_equal(scored.labels, expected)
    assert scored.accuracy == float((expected == [0, 1]).mean())
