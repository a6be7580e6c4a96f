"""Whether a CSV run classifies or regresses, decided from its sites' schemas.

``problem=auto`` makes a regression run when a site's label is a regression
target (numbers of more than :data:`~fednet.learning.schema.MAX_LABEL_CLASSES`
values), a classification run otherwise; ``classification`` and
``regression`` force it, and sites whose labels cannot serve the run are
ineligible with the reason (:func:`fednet.learning.schema.check_schema`).
A regression run's schema has no classes and a numeric label; its models
have one output.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import numpy as np

from fednet.config import RunConfig
from fednet.exceptions import SchemaError
from fednet.learning import models
from fednet.learning.preprocess import Preprocess
from fednet.learning.schema import Schema, check_schema, merge_schemas
from fednet.learning.target import TargetStats, merge_targets
from fednet.protocol import Hello
from fednet.typing import NDArrays

logger = logging.getLogger(__name__)


def problem_schema(problem: str, schemas: Sequence[Schema]) -> Schema:
    """Return a run's schema from its sites' (same columns) for ``problem``.

    Raises:
        SchemaError: if no site's labels can serve the problem.
    """
    if problem == "auto":
        regression = any(s.regression for s in schemas)
        problem = "regression" if regression else "classification"
    if problem == "regression":
        numeric = [s for s in schemas if s.numeric_label]
        if not numeric:
            raise SchemaError("regression needs numeric labels; no site's labels"
                              " are all numbers")
        first = merge_schemas(numeric)
        return Schema(first.feature_names, (), first.categorical, numeric_label=True)
    labelled = [s for s in schemas if s.classes]
    if not labelled:
        raise SchemaError("every site's label is a regression target (numbers of"
                          " many values): set problem to regression")
    return merge_schemas(labelled)


def check_positive(config: RunConfig, schema: Schema | None) -> None:
    """Refuse a ``positive_class`` the run's classes do not hold.

    Raises:
        SchemaError: naming the class and the run's classes.
    """
    label = config.positive_class
    if not label or schema is None:
        return
    if schema.regression:
        raise SchemaError("positive_class is set but the run is a regression")
    if label not in schema.classes:
        shown = ", ".join(schema.classes[:10])
        raise SchemaError(f"positive_class {label!r} is not one of the run's classes"
                          f" ({shown})")


def with_target(
    preprocess: Preprocess | None, schema: Schema | None, hellos: Sequence[Hello]
) -> Preprocess | None:
    """Add a regression run's label mean and scale, merged from its sites.

    Only sites holding the run's columns with numeric labels count, in order
    of name; an invalid summary is logged and left out. Without any (sites of
    an earlier release), models learn the labels as they are.
    """
    if preprocess is None or schema is None or not schema.regression:
        return preprocess
    if preprocess.target is not None:  # a resumed run's, as stored
        return preprocess
    parts = []
    for hello in sorted(hellos, key=lambda h: h.name):
        summary = (hello.stats or {}).get("target")
        if summary is None or not _serves(hello, schema):
            continue
        try:
            parts.append(TargetStats.from_dict(summary))
        except SchemaError as e:
            logger.warning("client %s sent an invalid label summary: %s", hello.name, e)
    if not parts:
        logger.warning("no site sent a label summary: the labels are not standardised")
        return preprocess
    merged = merge_targets(parts)
    logger.info("regression: label mean %.6g, scale %.6g over %d rows of %d sites",
                merged.mean, merged.scale, merged.count, len(parts))
    return dataclasses.replace(preprocess, target=(merged.mean, merged.scale))


def _serves(hello: Hello, schema: Schema) -> bool:
    try:
        check_schema(schema, Schema.from_dict(hello.schema))
    except SchemaError:
        return False
    return True


def initial_params(
    config: RunConfig, schema: Schema | None, preprocess: Preprocess | None
) -> NDArrays:
    """Return a run's first global model (synthetic: zeros of its size)."""
    if schema is None:
        return [np.zeros(config.synthetic_params, dtype=np.float32)]
    return models.init_params(
        config.model,
        len(schema.feature_names) if preprocess is None else preprocess.width,
        len(schema.classes) or 1,  # regression: one output
        hidden_units=config.hidden_units,
        seed=config.seed,
    )
