"""A trained model as one self-describing file, and predictions from it.

A bundle is a zip archive of two members: ``model.npz`` (the global model's
arrays) and ``bundle.json``: the feature names and which are categorical, the
classes, the preprocessing every site applied, the RunConfig, the metrics of
every round, the privacy spent and the model's lineage (run, round, sites,
fednet version, the SHA-256 of ``model.npz``). Reading one checks sizes
before it inflates anything and the checksum before it trusts the arrays.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fednet import __version__
from fednet.exceptions import FednetError, SchemaError
from fednet.learning import models
from fednet.learning.preprocess import Preprocess
from fednet.learning.schema import Schema
from fednet.typing import NDArrays
from fednet.views import RunView

FORMAT = "fednet-bundle/1"
MAX_MODEL_BYTES = 4 << 30
MAX_META_BYTES = 64 << 20
F32 = npt.NDArray[np.float32]


class BundleError(FednetError):
    """A file is not a bundle fednet can use; the message says why."""


@dataclass(frozen=True, eq=False)
class Bundle:
    """A model with what it needs to predict: schema, preprocessing, lineage."""

    meta: dict[str, Any]
    parameters: NDArrays
    schema: Schema
    preprocess: Preprocess

    @property
    def model(self) -> str:
        """Return the model's kind (``logreg``, ``mlp``)."""
        return str(self.meta["config"]["model"])

    def predict(
        self, x: npt.ArrayLike, categories: Mapping[int, Sequence[str]] | None = None
    ) -> tuple[npt.NDArray[np.int64], F32]:
        """Return each raw row's class index and class probabilities.

        The class is the most probable one, as evaluations count it.
        """
        inputs = self.preprocess.apply(x, categories)
        proba = models.predict_proba(self.model, self.parameters, inputs)
        return proba.argmax(axis=1).astype(np.int64), proba

    def predict_values(
        self, x: npt.ArrayLike, categories: Mapping[int, Sequence[str]] | None = None
    ) -> npt.NDArray[np.float64]:
        """Return a regression model's prediction for each raw row, in label units."""
        inputs = self.preprocess.apply(x, categories)
        out = models.predict_values(self.model, self.parameters, inputs)
        return self.preprocess.unscale_target(out)

    @property
    def positive(self) -> int | None:
        """Return the index of the run's ``positive_class``, if it names one."""
        label = self.meta["config"].get("positive_class", "")
        classes = self.schema.classes
        return classes.index(label) if label in classes else None


def build_bundle(
    run: RunView,
    which: str,
    server_round: int,
    parameters: NDArrays,
    preprocess: Preprocess,
) -> bytes:
    """Return the bytes of a bundle of ``run``'s model after ``server_round``.

    Args:
        run: the run, with its rounds.
        which: ``best`` or ``last``, recorded in the bundle.
        server_round: the round whose model ``parameters`` is.
        parameters: the global model.
        preprocess: what turns raw rows into the model's input.
    """
    model = io.BytesIO()
    np.savez(model, *parameters)
    schema = Schema.from_dict(run.schema)
    rounds = run.rounds or ()
    sites = sorted({c for r in rounds for c in r.clients})
    meta = {
        "format": FORMAT,
        "fednet_version": __version__,
        "run_id": run.id,
        "which": which,
        "server_round": server_round,
        "config": run.config,
        "feature_names": list(schema.feature_names),
        "categorical": list(schema.categorical),
        "classes": list(schema.classes),
        "problem": "regression" if schema.regression else "classification",
        "preprocess": preprocess.to_dict(),
        "input_names": list(preprocess.feature_names(schema.feature_names)),
        "rounds": [r.to_dict() for r in rounds],
        # The run's privacy settings and the epsilon spent by every round it
        # played (each round's own is in ``rounds``); None for older runs.
        "privacy": run.privacy.to_dict() if run.privacy is not None else None,
        "sites": [
            {"name": s, "rounds": sum(s in r.clients for r in rounds)} for s in sites
        ],
        "sha256": hashlib.sha256(model.getvalue()).hexdigest(),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bundle.json", json.dumps(meta, allow_nan=False))
        archive.writestr("model.npz", model.getvalue())
    return out.getvalue()


def read_bundle(
    data: bytes | io.BufferedIOBase,
    max_model_bytes: int | None = None,
    max_meta_bytes: int | None = None,
) -> Bundle:
    """Read and check a bundle (members inflating to at most the limits given).

    The limits default to :data:`MAX_MODEL_BYTES` and :data:`MAX_META_BYTES`.

    Raises:
        BundleError: if it is not a zip of ``bundle.json`` and ``model.npz``,
            a member is too large, the checksum does not match, or the
            metadata is malformed.
    """
    meta_limit = max_meta_bytes or MAX_META_BYTES
    model_limit = max_model_bytes or MAX_MODEL_BYTES
    try:
        source = io.BytesIO(data) if isinstance(data, bytes) else data
        with zipfile.ZipFile(source) as archive:
            meta_raw = _member(archive, "bundle.json", meta_limit)
            model_raw = _member(archive, "model.npz", model_limit)
    except zipfile.BadZipFile as e:
        raise BundleError(f"not a bundle (a zip archive): {e}") from None
    try:
        meta = json.loads(meta_raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise BundleError(f"bundle.json is not JSON: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BundleError(f"not a {FORMAT} bundle")
    if hashlib.sha256(model_raw).hexdigest() != meta.get("sha256"):
        raise BundleError("model.npz does not match the bundle's checksum")
    try:
        schema = Schema(
            tuple(meta["feature_names"]),
            tuple(meta["classes"]),
            tuple(meta["categorical"]),
            numeric_label=meta.get("problem") == "regression",
        )
        preprocess = Preprocess.from_dict(meta["preprocess"])
        with np.load(io.BytesIO(model_raw), allow_pickle=False) as npz:
            parameters = [npz[f"arr_{i}"] for i in range(len(npz.files))]
        models.check_params(meta["config"]["model"], parameters, preprocess.width,
                            len(schema.classes) or 1)
    except (KeyError, TypeError, ValueError, SchemaError) as e:
        raise BundleError(f"bundle.json or model.npz is malformed: {e}") from None
    return Bundle(meta, parameters, schema, preprocess)


def _member(archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise BundleError(f"the bundle has no {name}") from None
    if info.file_size > limit:
        raise BundleError(f"{name} is {info.file_size} bytes, at most {limit}")
    with archive.open(info) as member:
        raw = member.read(limit + 1)
    if len(raw) > limit:
        raise BundleError(f"{name} inflates beyond {limit} bytes")
    return raw
