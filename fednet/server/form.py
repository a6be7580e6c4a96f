"""The dashboard's launch form: one input per RunConfig field, grouped."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from collections.abc import Iterable
from typing import Any

from fednet.config import DP_AVAILABLE, IMPUTE, MODES_AVAILABLE, STRATEGIES, TASKS
from fednet.config import RunConfig
from fednet.learning.metrics import CLASSIFICATION, REGRESSION
from fednet.learning.trainers.builtin import BUILTIN
from fednet.runmetrics import PROBLEMS
from fednet.server.registry import ClientConn, announced_trainers

GROUPS = ("What", "Who", "How", "Strategy", "Privacy", "Data", "Scoring", "Advanced")
"""The form's fieldsets, in order (``Advanced`` is folded away)."""


@dataclass(frozen=True)
class FormField:
    """One input of the launch form, named after its RunConfig field."""

    name: str
    label: str
    help: str
    group: str
    choices: tuple[str, ...] = ()
    step: str = "1"
    default: Any = None
    entry: str = ""  # "text" or "list" (comma-separated): a text input

    @property
    def kind(self) -> str:
        """Return how the script sends the value: bool, float, int, text or list."""
        if self.entry:
            return self.entry
        if self.choices == _BOOL:
            return "bool"
        if self.choices:
            return "text"
        return "float" if self.step == "any" else "int"


_BOOL = ("false", "true")
"""The choices of a yes/no field (a select; the script sends a JSON boolean)."""


_FIELDS = (
    FormField("task", "Task", "Dataset the clients hold", "What", TASKS),
    FormField(
        "model", "Model", "A trainer the sites offer: logreg, mlp or a site's own",
        "What", entry="text",
    ),
    FormField(
        "strategy", "Strategy", "How client updates are combined", "What", STRATEGIES
    ),
    FormField(
        "mode", "Mode",
        "sync: rounds; async: FedBuff; gossip: clients average peers' models",
        "What",
        MODES_AVAILABLE,
    ),
    FormField(
        "rounds", "Rounds", "Federated rounds (async: model versions; gossip: steps)",
        "What",
    ),
    FormField("clients_per_round", "Clients per round", "0 means every client", "Who"),
    FormField("min_clients", "Min clients", "Wait for this many before a round", "Who"),
    FormField(
        "round_timeout_s",
        "Round timeout (s)",
        "Close a round after this long",
        "Who",
        step="any",
    ),
    FormField(
        "local_epochs", "Local epochs", "Passes over local data per round", "How"
    ),
    FormField("batch_size", "Batch size", "Examples per gradient step", "How"),
    FormField(
        "learning_rate", "Learning rate", "Step size of local SGD", "How", step="any"
    ),
    FormField("seed", "Seed", "Makes sampling and init reproducible", "How"),
    FormField(
        "hidden_units", "Hidden units", "Width of the MLP's hidden layer", "Advanced"
    ),
    FormField(
        "synthetic_params",
        "Synthetic parameters",
        "Model size of the synthetic task",
        "Advanced",
    ),
    FormField(
        "proximal_mu", "Proximal mu", "fedprox: pull towards the global model",
        "Strategy", step="any",
    ),
    FormField(
        "trim_fraction", "Trim fraction", "fedtrimmedavg: cut at each end",
        "Strategy", step="any",
    ),
    FormField(
        "num_malicious", "Assumed attackers", "krum, multikrum: f", "Strategy"
    ),
    FormField(
        "clip_norm", "Clip norm", "fedavg_clipped: largest update distance",
        "Strategy", step="any",
    ),
    FormField(
        "server_learning_rate", "Server learning rate",
        "fedadam, fedyogi, fedadagrad, fedavgm: eta; 0 = Flower's default",
        "Strategy", step="any",
    ),
    FormField(
        "server_momentum", "Server momentum", "fedavgm: momentum (0 = none)",
        "Strategy", step="any",
    ),
    FormField(
        "beta_1", "Beta 1", "fedadam, fedyogi: first-moment decay", "Strategy",
        step="any",
    ),
    FormField(
        "beta_2", "Beta 2", "fedadam, fedyogi: second-moment decay", "Strategy",
        step="any",
    ),
    FormField(
        "tau", "Tau", "fedadam, fedyogi, fedadagrad: adaptivity; 0 = Flower's default",
        "Strategy", step="any",
    ),
    FormField("buffer_size", "Buffer size", "async: updates per version (K)", "Who"),
    FormField(
        "max_staleness", "Max staleness", "async: refuse updates older", "Who"
    ),
    FormField(
        "max_concurrency", "Max concurrency", "async: clients training; 0 = all",
        "Who",
    ),
    FormField(
        "gossip_peers", "Gossip peers",
        "gossip: peers' models each client averages per step (k + 1 clients needed)",
        "Who",
    ),
    FormField(
        "dp", "Differential privacy",
        "central: clip, Poisson-sample and add noise (fedavg, fedprox); distributed:"
        " the sites clip and add the noise, with secure aggregation", "Privacy",
        DP_AVAILABLE,
    ),
    FormField(
        "dp_noise_multiplier", "Noise multiplier", "Noise std over the clip norm",
        "Privacy", step="any",
    ),
    FormField(
        "dp_clip_norm", "DP clip norm", "Largest update norm a site contributes",
        "Privacy", step="any",
    ),
    FormField(
        "dp_adaptive_clip", "Adaptive clipping",
        "Move the clip norm towards the median update norm", "Privacy", _BOOL,
    ),
    FormField(
        "dp_target_epsilon", "Target epsilon",
        "Stop before the run spends more; 0 = no budget", "Privacy", step="any",
    ),
    FormField(
        "dp_delta", "Delta", "The delta of (epsilon, delta)", "Privacy", step="any",
    ),
    FormField(
        "impute", "Impute", "CSV: fill a missing cell with the pooled mean or median",
        "Data", IMPUTE,
    ),
    FormField(
        "missing_indicator", "Missing indicators",
        "CSV: one 0/1 input per column missing anywhere", "Data", _BOOL,
    ),
    FormField(
        "min_count", "Min count",
        "CSV: use only sites that suppress counts below at least this", "Data",
    ),
    FormField(
        "warm_start", "Warm start", "Start from this run's last model; 0 = none",
        "Data",
    ),
    FormField(
        "secure_aggregation", "Secure aggregation",
        "The coordinator sees only the sum of the updates (fedavg, fedprox; sync;"
        " no dp)", "Privacy", _BOOL,
    ),
    FormField(
        "secagg_threshold", "Secure aggregation threshold",
        "Sites that must remain: a fraction in (0.5, 1] or a count >= 2", "Privacy",
        step="any",
    ),
    FormField(
        "secagg_clip", "Secure aggregation clip",
        "Each update coordinate's change is clipped to [-clip, clip]", "Privacy",
        step="any",
    ),
    FormField(
        "problem", "Problem", "auto: regression when the label column is numeric",
        "Scoring", PROBLEMS,
    ),
    FormField(
        "metrics", "Metrics", "Comma-separated; empty: every metric of the problem",
        "Scoring", entry="list",
    ),
    FormField(
        "selection_metric", "Best model by", "Empty: accuracy, or r2 for regression",
        "Scoring", ("", "loss", *CLASSIFICATION, *REGRESSION),
    ),
    FormField(
        "positive_class", "Positive class",
        "Label of sensitivity and specificity; empty: the second class", "Scoring",
        entry="text",
    ),
)


def launch_form_fields() -> list[FormField]:
    """Return the launch form's inputs with RunConfig's defaults filled in."""
    defaults = RunConfig()
    names = {f.name for f in dataclasses.fields(RunConfig)}
    assert names == {f.name for f in _FIELDS}, "launch form out of sync with RunConfig"
    return [
        dataclasses.replace(f, default=_form_value(getattr(defaults, f.name)))
        for f in _FIELDS
    ]


def _form_value(value: Any) -> Any:
    """Return a default as the form shows it (booleans as their choice)."""
    if isinstance(value, bool):
        return _BOOL[value]
    if isinstance(value, tuple):
        return ", ".join(value)
    return value


def trainer_names(clients: Iterable[ClientConn]) -> list[str]:
    """Return the trainers the connected sites offer, built-ins first, for the form."""
    offered = {str(t["name"]) for c in clients for t in announced_trainers(c.trainers)}
    return [*sorted(BUILTIN), *sorted(offered - set(BUILTIN))]
