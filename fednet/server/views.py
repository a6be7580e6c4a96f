"""Dashboard page handlers: the live overview and one page per run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from markupsafe import Markup

from fednet.config import (
    DP_AVAILABLE,
    IMPUTE,
    MODELS,
    STRATEGIES,
    TASKS,
    RunConfig,
)
from fednet.fields import parse_int64
from fednet.server import access, auth
from fednet.server.api import run_with_progress
from fednet.server.dashboard import build_snapshot, strict_dumps
from fednet.server.keys import RUNS, STORE


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

    @property
    def kind(self) -> str:
        """Return how the form's script sends the value: bool, float, int or text."""
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
        "model", "Model", "Logistic regression or a one-layer MLP", "What", MODELS
    ),
    FormField(
        "strategy", "Strategy", "How client updates are combined", "What", STRATEGIES
    ),
    FormField("rounds", "Rounds", "Federated rounds in the session", "What"),
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
    FormField(
        "dp", "Differential privacy",
        "central: clip, Poisson-sample and add noise (fedavg, fedprox); distributed"
        " needs secure aggregation, not available yet", "Privacy", DP_AVAILABLE,
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
    return value


def _snapshot_json(data: Any) -> Markup:
    """Serialise data for a ``<script type="application/json">`` element.

    Strict JSON (NaN and infinities become null), as the API's answers.
    """
    # "</" would end the script element early; \u003c keeps it inert.
    return Markup(strict_dumps(data).replace("<", "\\u003c"))


async def index(request: web.Request) -> web.Response:
    """Render the live dashboard, seeded with a snapshot of the server.

    Viewers get no launch form (the template) and no sites' addresses.
    """
    details = access.sees_site_details(request)
    context = {
        "page": "dashboard",
        "fields": launch_form_fields(),
        "groups": ("What", "Who", "How", "Strategy", "Privacy", "Data", "Advanced"),
        "snapshot": _snapshot_json(build_snapshot(request.app, site_details=details)),
    }
    return auth.render_page(request, "dashboard.html", context)


async def rounds_rows(request: web.Request) -> web.Response:
    """Render the rows of a run's rounds table after round ``since`` (default 0).

    The run page's script inserts them as rounds finish, so the table has
    one renderer: the ``rounds_rows.html`` template.
    """
    run_id = parse_int64(request.match_info["run_id"])
    since = parse_int64(request.query.get("since", "0"))
    if since is None:
        raise web.HTTPBadRequest(text="since must be an integer\n")
    if run_id is None or request.app[STORE].get_run(run_id, with_rounds=False) is None:
        raise web.HTTPNotFound(text="no such run\n")
    rounds = request.app[STORE].get_rounds(run_id, since_round=since)
    context = {"rounds": [r.to_dict() for r in rounds]}
    return aiohttp_jinja2.render_template("rounds_rows.html", request, context)


async def run_page(request: web.Request) -> web.Response:
    """Render one run: config, per-round table with its clients, charts."""
    run_id = parse_int64(request.match_info["run_id"])
    if run_id is None:
        raise web.HTTPNotFound(text="no such run\n")
    view = request.app[STORE].get_run(run_id)
    if view is None:
        context = {"page": "run", "run_id": run_id}
        return auth.render_page(request, "not_found.html", context, status=404)
    run = run_with_progress(view, request.app[RUNS].progress())
    run.pop("schema", None)
    context = {"page": "run", "run": run, "run_json": _snapshot_json(run)}
    return auth.render_page(request, "run.html", context)
