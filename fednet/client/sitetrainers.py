"""The trainers a site offers: found once from its own configuration, built per run.

A site's trainer names come from its flags (``--trainer``), its installed
packages (the ``fednet.trainers`` entry points) and the built-ins. Each is
found and built once at start on the site's own data: one that fails is left
out with its reason (logged, shown on the status page) and the site serves
the others. The name a run sends only selects among these; nothing named
over the network is ever imported.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from fednet.exceptions import ArchitectureMismatch
from fednet.fitconfig import FitConfig
from fednet.learning.clientdata import ClientData
from fednet.learning.trainers.base import (
    TrainConfig,
    Trainer,
    TrainerContext,
    check_parameters,
)
from fednet.learning.trainers.builtin import BUILTIN
from fednet.learning.trainers.registry import (
    TrainerFactory,
    TrainerNotFound,
    build_trainer,
    find_factory,
)
from fednet.protocol import Error, Welcome, serialize_parts
from fednet.typing import NDArray

logger = logging.getLogger(__name__)

MAX_CACHED = 4
"""Trainers built for runs kept at once (a run's, and a few before it)."""


class SiteTrainers:
    """A site's trainer factories by name, and why the others are unavailable.

    Args:
        names: ``{name: what to load}`` from
            :func:`~fednet.learning.trainers.registry.site_trainer_names`;
            None: the built-ins only.
    """

    def __init__(self, names: Mapping[str, str] | None = None) -> None:
        if names is None:
            names = {name: name for name in BUILTIN}
        self.factories: dict[str, TrainerFactory] = {}
        self.failures: dict[str, str] = {}
        self.fingerprints: dict[str, str] = {}
        self._built: dict[tuple[object, ...], Trainer] = {}
        for name, target in sorted(names.items()):
            try:
                self.factories[name] = find_factory(target)
            except TrainerNotFound as e:
                self._fail(name, str(e))

    def _fail(self, name: str, reason: str) -> None:
        logger.warning("trainer %s is unavailable: %s", name, reason)
        self.failures[name] = reason
        self.factories.pop(name, None)

    def check(self, context: TrainerContext) -> None:
        """Build every trainer on the site's own data; leave out those that fail.

        Records each working trainer's fingerprint for these dimensions (the
        site's own features and labels), which is what ``hello`` announces.
        """
        for name, factory in sorted(self.factories.items()):
            try:
                trainer = build_trainer(name, factory, context)
            except TrainerNotFound as e:
                self._fail(name, str(e))
                continue
            self.fingerprints[name] = trainer.architecture().fingerprint

    def announce(self) -> list[dict[str, str]]:
        """Return ``[{name, fingerprint}]`` of the working trainers, by name."""
        return [
            {"name": name, "fingerprint": self.fingerprints.get(name, "")}
            for name in sorted(self.factories)
        ]

    def build(
        self, name: str, context: TrainerContext, key: tuple[object, ...]
    ) -> Trainer:
        """Return the trainer ``name`` built on a run's ``context``, once per ``key``.

        Raises:
            TrainerNotFound: if the site has no trainer of that name, or it
                cannot be built for the run (the reason says which).
        """
        cached = self._built.get((name, *key))
        if cached is not None:
            return cached
        factory = self.factories.get(name)
        if factory is None:
            have = ", ".join(sorted(self.factories)) or "none"
            why = self.failures.get(name)
            detail = f" ({why})" if why else f" (it has {have})"
            raise TrainerNotFound(f"this site has no trainer {name!r:.200}{detail}")
        trainer = build_trainer(name, factory, context)
        while len(self._built) >= MAX_CACHED:
            del self._built[next(iter(self._built))]
        self._built[(name, *key)] = trainer
        return trainer


def train_config(config: FitConfig) -> TrainConfig:
    """Return the trainer's view of a round's configuration."""
    return TrainConfig(
        epochs=config.local_epochs,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        seed=config.seed,
        server_round=config.server_round,
        proximal_mu=config.proximal_mu,
        extra={"hidden_units": config.hidden_units},
    )


def check_run_parameters(trainer: Trainer, params: Sequence[NDArray]) -> None:
    """Refuse parameters the trainer cannot take, before it sees them.

    Raises:
        ArchitectureMismatch: naming the first array that does not fit.
    """
    arch = trainer.architecture()
    try:
        check_parameters(arch, params)
    except ValueError as e:
        raise ArchitectureMismatch(
            f"the run's parameters do not fit this site's trainer ({arch.kind},"
            f" fingerprint {arch.fingerprint[:12]}): {e}"
        ) from None


def site_context(data: ClientData, client_number: int) -> TrainerContext:
    """Return the site's own data as a trainer context (what ``hello`` describes).

    Labels of two or more classes classify; numbers alone regress.
    """
    if len(data.classes) >= 2 or data.targets_train is None or data.targets_val is None:
        return TrainerContext(
            data.x_train, data.y_train, data.x_val, data.y_val,
            max(len(data.classes), 2), data.feature_names, client_number,
        )
    return TrainerContext(
        data.x_train, data.targets_train, data.x_val, data.targets_val, None,
        data.feature_names, client_number,
    )


def error_code(error: Exception) -> str:
    """Return the code of the error a request failed with, for the coordinator."""
    if isinstance(error, TrainerNotFound):
        return "trainer_unavailable"
    if isinstance(error, ArchitectureMismatch):
        return "architecture_mismatch"
    return "client_error"


def direct_only(
    parts: list[str | bytes | memoryview], nbytes: int, run_id: int, welcome: Welcome
) -> list[str | bytes | memoryview]:
    """Return an ``init_result``'s parts, or an error if they need an upload grant.

    Initial parameters travel in one direct frame (at most the welcome's
    ``direct_upload_bytes``); larger ones are refused here with the reason.
    """
    if len(parts) == 1 and nbytes <= welcome.direct_upload_bytes:
        return parts
    reason = (
        f"initial parameters of {nbytes} bytes exceed the"
        f" {welcome.direct_upload_bytes} bytes of a direct upload"
    )
    return serialize_parts(Error("init_too_large", reason, run_id, 0))
