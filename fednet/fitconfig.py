"""The typed ``config`` of fit and evaluate messages: what a client trains with."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from fednet.exceptions import ProtocolError, SchemaError
from fednet.fields import (
    Fields,
    bool_field,
    build_fields,
    check_table,
    float_field,
    int_field,
    optional_field,
    str_field,
    str_tuple_field,
)
from fednet.gossip import MAX_GOSSIP_PEERS
from fednet.learning.preprocess import Preprocess

if TYPE_CHECKING:
    from fednet.config import RunConfig

MAX_CLASSES = 100_000
MAX_NAME = 256


def _preprocess(value: Any) -> Preprocess:
    try:
        return Preprocess.from_dict(value)
    except SchemaError as e:
        raise ValueError(str(e)) from None


def _non_negative(value: Any) -> float:
    number: float = float_field()(value)
    if number < 0:
        raise ValueError(f"must be at least 0, got {number!r}")
    return number


@dataclass(frozen=True)
class FitConfig(Mapping[str, Any]):
    """How a client trains or evaluates in one round (``config`` of fit, evaluate).

    Build it with :meth:`from_dict` from untrusted JSON. Keys it does not know
    are ignored: a newer coordinator may add options, and older ones send
    every RunConfig field (``rounds``, ``strategy``, ``min_clients``, ...).

    It also reads as the mapping of its JSON form (``config["classes"]`` is a
    list), for code that treats the config as a dict.

    Attributes:
        server_round: the round, counted from 1 (seeds local randomness).
        task: the run's task; a client only serves the task its data is for.
        model: the model the parameters are for (``logreg``, ``mlp``).
        local_epochs: passes over the local train split.
        batch_size: examples per SGD step.
        learning_rate: SGD step size.
        seed: the run's seed.
        hidden_units: width of the MLP's hidden layer.
        classes: the run's class labels, in the order of the model's outputs;
            None for the synthetic task (no schema).
        proximal_mu: FedProx's proximal weight (0 = plain local SGD); an
            older coordinator does not send it.
        preprocess: how a CSV site turns its raw features into model input,
            the same at every site (fixed from the federated statistics);
            None: each site scales with its own statistics.
        regression: the run regresses numeric labels (no classes); sent only
            when true. (Not ``problem``: an older coordinator sends every
            RunConfig field, whose ``problem`` may be ``auto``.)
        statistics: evaluations also carry summable statistics
            (:mod:`fednet.learning.metrics`); an older coordinator does not
            ask for them, and an older client does not send them.
        peer_models: a gossip step: the parameters are k + 1 models, the
            client's own then its k peers', to average before training
            (:mod:`fednet.gossip`); 0 (left out) otherwise.
    """

    server_round: int
    task: str
    model: str
    local_epochs: int
    batch_size: int
    learning_rate: float
    seed: int
    hidden_units: int
    classes: tuple[str, ...] | None = None
    proximal_mu: float = 0.0
    preprocess: Preprocess | None = None
    regression: bool = False
    statistics: bool = False
    peer_models: int = 0

    FIELDS: ClassVar[Fields] = {
        "server_round": int_field(lo=1),
        "task": str_field(MAX_NAME),
        "model": str_field(MAX_NAME),
        "local_epochs": int_field(lo=1),
        "batch_size": int_field(lo=1),
        "learning_rate": float_field(positive=True),
        "seed": int_field(lo=0),
        "hidden_units": int_field(lo=1),
        "classes": optional_field(str_tuple_field(MAX_CLASSES, MAX_NAME)),
        "proximal_mu": _non_negative,
        "preprocess": optional_field(_preprocess),
        "regression": bool_field,
        "statistics": bool_field,
        "peer_models": int_field(lo=0, hi=MAX_GOSSIP_PEERS),
    }

    @classmethod
    def for_round(
        cls,
        run: RunConfig,
        server_round: int,
        classes: tuple[str, ...] | None,
        preprocess: Preprocess | None = None,
    ) -> FitConfig:
        """Return what a run's clients are told for one of its rounds.

        ``classes`` is () for a regression run, None without a schema.
        """
        regression = classes == ()
        return cls(
            server_round=server_round,
            task=run.task,
            model=run.model,
            local_epochs=run.local_epochs,
            batch_size=run.batch_size,
            learning_rate=run.learning_rate,
            seed=run.seed,
            hidden_units=run.hidden_units,
            classes=None if regression else classes,
            proximal_mu=run.proximal_mu if run.strategy == "fedprox" else 0.0,
            preprocess=preprocess,
            regression=regression,
            statistics=classes is not None,
            peer_models=run.gossip_peers if run.mode == "gossip" else 0,
        )

    @classmethod
    def from_dict(cls, data: Any) -> FitConfig:
        """Validate the JSON ``config`` of a fit or evaluate and build it.

        Raises:
            ProtocolError: naming the first missing or invalid field.
        """
        if not isinstance(data, dict):
            raise ProtocolError(f"config: must be a JSON object, got {data!r:.80}")
        return cls(**build_fields(cls, cls.FIELDS, data, "config"))

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form accepted by :meth:`from_dict`.

        ``classes`` and ``preprocess`` are left out when None, ``proximal_mu``
        when 0, ``regression`` and ``statistics`` when false:
        what a FedAvg round sends is what it sent before they existed.
        """
        data = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name
            not in ("classes", "proximal_mu", "preprocess", "regression", "statistics",
                    "peer_models")
        }
        if self.peer_models:
            data["peer_models"] = self.peer_models
        if self.regression:
            data["regression"] = True
        if self.statistics:
            data["statistics"] = True
        if self.proximal_mu:
            data["proximal_mu"] = self.proximal_mu
        if self.classes is not None:
            data["classes"] = list(self.classes)
        if self.preprocess is not None:
            data["preprocess"] = self.preprocess.to_dict()
        return data

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())


check_table(FitConfig, FitConfig.FIELDS)
