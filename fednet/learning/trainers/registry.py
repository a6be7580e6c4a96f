"""Find a site's trainers by name: built-ins, entry points and ``module:attribute``.

A name is looked up, in order, among :data:`~.builtin.BUILTIN`, then as a
``module:attribute`` path (when it holds a colon), then in the installed
distributions' ``fednet.trainers`` entry points. What it finds is a factory:
a callable that takes a :class:`~.base.TrainerContext` and returns a trainer.

Only names configured at the site (its flags and installed packages) are
ever loaded. A run's ``model`` only selects among the trainers a site has
already loaded (:func:`pick_trainer`); it is never imported, so no code
that came over the network runs.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from fednet.exceptions import FednetError
from fednet.learning.trainers.architecture import TRAINER_NAME
from fednet.learning.trainers.base import (
    Architecture,
    Trainer,
    TrainerContext,
    check_parameters,
)
from fednet.learning.trainers.builtin import BUILTIN

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "fednet.trainers"
TrainerFactory = Callable[[TrainerContext], Trainer]

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_PATH = re.compile(rf"{_IDENT}(\.{_IDENT})*:{_IDENT}(\.{_IDENT})*")
_NAME = TRAINER_NAME
_METHODS = ("architecture", "get_parameters", "set_parameters", "fit", "evaluate")


class TrainerNotFound(FednetError):
    """A trainer name does not give a working trainer (the reason is the message)."""


def _a(obj: object) -> str:
    """Return "a list", "an int": the type of ``obj`` for a message."""
    what = type(obj).__name__
    return f"{'an' if what[:1].lower() in 'aeiou' else 'a'} {what}"


def _import_path(path: str) -> Any:
    """Import ``module:attribute`` (attributes may be dotted) and return the object."""
    if not _PATH.fullmatch(path):
        raise TrainerNotFound(
            f"trainer path {path!r:.200} is not of the form package.module:attribute"
        )
    module_name, _, attribute = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    # Importing runs the site's plug-in module: whatever it raises (not only
    # ImportError) makes this trainer unavailable, not the client crash.
    except Exception as e:
        raise TrainerNotFound(
            f"trainer {path!r}: cannot import module {module_name!r}:"
            f" {type(e).__name__}: {e}"
        ) from e
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise TrainerNotFound(
                f"trainer {path!r}: {module_name!r} has no attribute {attribute!r}"
            )
        obj = getattr(obj, part)
    return obj


def _entry_points(name: str | None = None) -> list[importlib.metadata.EntryPoint]:
    found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    return [ep for ep in found if name is None or ep.name == name]


def _load_entry_point(name: str) -> Any:
    points = _entry_points(name)
    if not points:
        known = ", ".join(available_trainers()) or "none"
        raise TrainerNotFound(
            f"no trainer named {name!r}: not built in, and no installed package"
            f" registers it in the {ENTRY_POINT_GROUP!r} entry points (known: {known})"
        )
    if len({ep.value for ep in points}) > 1:
        values = ", ".join(sorted({ep.value for ep in points}))
        raise TrainerNotFound(f"trainer {name!r} is registered twice: {values}")
    try:
        return points[0].load()
    except Exception as e:  # the plug-in's import, as in _import_path
        raise TrainerNotFound(
            f"trainer {name!r} (entry point {points[0].value}) cannot be loaded:"
            f" {type(e).__name__}: {e}"
        ) from e


def find_factory(name: str) -> TrainerFactory:
    """Return the factory that ``name`` (configured at the site) stands for.

    Raises:
        TrainerNotFound: if the name is malformed, its module or attribute is
            missing, or what it names is not callable.
    """
    if name in BUILTIN:
        return BUILTIN[name]
    if ":" in name:
        factory = _import_path(name)
    elif _NAME.fullmatch(name):
        factory = _load_entry_point(name)
    else:
        raise TrainerNotFound(f"trainer name {name!r:.200} is malformed")
    if not callable(factory):
        raise TrainerNotFound(
            f"trainer {name!r} names {_a(factory)}, not a factory"
            " (a callable taking a TrainerContext)"
        )
    checked: TrainerFactory = factory
    return checked


def build_trainer(
    name: str, factory: TrainerFactory, context: TrainerContext
) -> Trainer:
    """Call ``factory`` on ``context`` and check that it made a working trainer.

    The trainer must implement the protocol, describe an :class:`Architecture`
    and hold parameters that match it.

    Raises:
        TrainerNotFound: with the reason, if the factory fails or returns
            something else.
    """
    # The factory and the trainer are the site's own plug-in code: whatever
    # they raise is reported as this trainer's failure, not a client crash.
    try:
        trainer = factory(context)
        if not isinstance(trainer, Trainer):
            missing = [m for m in _METHODS if not callable(getattr(trainer, m, None))]
            raise TrainerNotFound(
                f"its factory returned {_a(trainer)}, not a Trainer"
                f" (missing {', '.join(missing)})"
            )
        arch = trainer.architecture()
        if not isinstance(arch, Architecture):
            raise TrainerNotFound(
                f"architecture() returned {_a(arch)}, not an Architecture"
            )
        check_parameters(arch, trainer.get_parameters())
    except TrainerNotFound as e:
        raise TrainerNotFound(f"trainer {name!r}: {e}") from None
    except Exception as e:
        raise TrainerNotFound(
            f"trainer {name!r} failed to build: {type(e).__name__}: {e}"
        ) from e
    return trainer


def load_trainer(name: str, context: TrainerContext) -> Trainer:
    """Find the trainer ``name`` names and build it on ``context``.

    Raises:
        TrainerNotFound: with the reason.
    """
    return build_trainer(name, find_factory(name), context)


def available_trainers() -> list[str]:
    """Return the names of the built-in and installed (entry point) trainers."""
    return sorted(set(BUILTIN) | {ep.name for ep in _entry_points()})


def site_trainer_names(paths: Iterable[str] = ()) -> dict[str, str]:
    """Return what a site offers: its trainer names, each with what to load.

    Args:
        paths: the site's ``--trainer`` values, ``module:attribute`` or
            ``name=module:attribute``; the first form is named by its path.

    Returns:
        ``{name: name or module:attribute path}`` for :func:`find_factory`.

    Raises:
        TrainerNotFound: on a malformed value or one name given twice.
    """
    names = {name: name for name in available_trainers()}
    for value in paths:
        name, sep, path = value.partition("=")
        name, path = (name, path) if sep else (value, value)
        if not _PATH.fullmatch(path) or not (_NAME.fullmatch(name) or name == path):
            raise TrainerNotFound(
                f"--trainer {value!r:.200} is not module:attribute or"
                " name=module:attribute"
            )
        if name in names and names[name] != path:
            raise TrainerNotFound(f"trainer name {name!r} is given twice")
        names[name] = path
    return names


def load_site_trainers(
    names: Mapping[str, str], context: TrainerContext
) -> tuple[dict[str, Trainer], dict[str, str]]:
    """Build every trainer a site offers on its data; one that fails is left out.

    Args:
        names: from :func:`site_trainer_names`.
        context: the site's data.

    Returns:
        ``(trainers, failures)``: the working trainers by name, and the reason
        each other one failed (to log, and to show on the status page).
    """
    trainers: dict[str, Trainer] = {}
    failures: dict[str, str] = {}
    for name, target in sorted(names.items()):
        try:
            trainers[name] = build_trainer(name, find_factory(target), context)
        except TrainerNotFound as e:
            logger.warning("trainer %s is unavailable: %s", name, e)
            failures[name] = str(e)
    return trainers, failures


def pick_trainer(loaded: Mapping[str, Trainer], name: str) -> Trainer:
    """Return the loaded trainer a run names; never loads anything.

    Raises:
        TrainerNotFound: if this site has no trainer of that name.
    """
    trainer = loaded.get(name)
    if trainer is None:
        have = ", ".join(sorted(loaded)) or "none"
        raise TrainerNotFound(f"this site has no trainer {name!r:.200} (it has {have})")
    return trainer


def announce(loaded: Mapping[str, Trainer]) -> list[dict[str, str]]:
    """Return the ``trainers`` a site announces: ``[{name, fingerprint}]``, by name."""
    return [
        {"name": name, "fingerprint": loaded[name].architecture().fingerprint}
        for name in sorted(loaded)
    ]
