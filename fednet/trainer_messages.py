"""Wire messages about trainers: what a site offers, and a run's initial model.

They are part of :mod:`fednet.protocol` (its ``Message`` union, its one
``parse`` and ``serialize``); they live here only to keep that module short.

* ``trainers`` (client, text): the trainers this site offers,
  ``[{name, fingerprint}]``. A client sends it right after a ``welcome``
  whose ``protocol_version`` is at least :data:`TRAINERS_VERSION`, never to
  an older coordinator (which would refuse an unknown message); a client
  that never sends it counts as having the built-ins ``logreg`` and ``mlp``.
* ``init_request`` (coordinator, text): build the run's trainer and send its
  initial parameters; sent to one eligible site, chosen with the run's seed,
  when the coordinator does not have the run's trainer.
* ``init_result`` (client, binary): the architecture (names, shapes, dtypes)
  and the initial parameters. The coordinator checks the arrays against the
  architecture and never runs any code of the site's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from fednet import fields
from fednet.fitconfig import FitConfig
from fednet.learning.trainers.architecture import TRAINER_NAME, Architecture
from fednet.typing import NDArrays

TRAINERS_VERSION = 2
"""The first coordinator protocol version that knows ``trainers`` and ``init_*``."""
MAX_TRAINERS = 64
"""The most trainers one site announces."""
_FINGERPRINT = re.compile(r"(|[0-9a-f]{64})")


def trainer_list_field(value: Any) -> tuple[dict[str, str], ...]:
    """Accept ``[{name, fingerprint}]``: bounded, names valid and unique."""
    if not isinstance(value, list) or len(value) > MAX_TRAINERS:
        raise ValueError(f"must be a list of at most {MAX_TRAINERS} trainers")
    seen: set[str] = set()
    out = []
    for item in value:
        if not isinstance(item, dict) or set(item) != {"name", "fingerprint"}:
            raise ValueError("each trainer must be an object of name and fingerprint")
        name, fingerprint = item["name"], item["fingerprint"]
        if not isinstance(name, str) or not TRAINER_NAME.fullmatch(name):
            raise ValueError(f"invalid trainer name {name!r:.80}")
        if not isinstance(fingerprint, str) or not _FINGERPRINT.fullmatch(fingerprint):
            raise ValueError(f"trainer {name}: invalid fingerprint {fingerprint!r:.80}")
        if name in seen:
            raise ValueError(f"trainer {name} is announced twice")
        seen.add(name)
        out.append({"name": name, "fingerprint": fingerprint})
    return tuple(out)


def architecture_field(value: Any) -> dict[str, Any]:
    """Accept a bounded architecture description (its canonical JSON form)."""
    return Architecture.from_dict(value).to_dict()


@dataclass(frozen=True)
class Trainers:
    """The trainers a site offers, by name, with their fingerprints."""

    type: ClassVar[str] = "trainers"
    trainers: tuple[dict[str, str], ...]

    FIELDS: ClassVar[fields.Fields] = {"trainers": trainer_list_field}


@dataclass(frozen=True)
class InitRequest:
    """Send the initial parameters of the run's trainer, built for this config."""

    type: ClassVar[str] = "init_request"
    run_id: int
    config: FitConfig

    FIELDS: ClassVar[fields.Fields] = {
        "run_id": fields.INT,
        "config": FitConfig.from_dict,
    }

    @property
    def server_round(self) -> int:
        """Return 0: the run's start, before its first round (for work queues)."""
        return 0

    @property
    def parameters(self) -> NDArrays:
        """Return no arrays (the request carries none; for work queues)."""
        return []


@dataclass(frozen=True)
class InitResult:
    """A site's initial parameters of a run's trainer, with their architecture."""

    type: ClassVar[str] = "init_result"
    run_id: int
    architecture: dict[str, Any]
    parameters: NDArrays = field(compare=False, repr=False)

    FIELDS: ClassVar[fields.Fields] = {
        "run_id": fields.INT,
        "architecture": architecture_field,
    }
