"""``GET /api/runs/{id}/bundle?which=best|last``: a run's model as a bundle.

``last`` is the model of the run's latest recorded round, ``best`` that of
its most accurate round (the earliest on a tie), kept beside the latest by
the recorder. The preprocessing a bundle carries is the run's shared one
(CSV runs) or the built-in data set's scaling.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from fednet.bundle import build_bundle
from fednet.fields import parse_int64
from fednet.learning.datasets import BUILTIN_DATASETS, load_builtin_partition
from fednet.learning.preprocess import Preprocess
from fednet.records import round_score
from fednet.runmetrics import stored_selection
from fednet.server import access
from fednet.server.keys import AUDIT, STORE
from fednet.server.store import Store
from fednet.views import RunView

WHICH = ("best", "last")


def bundle_round(run: RunView, which: str) -> int | None:
    """Return the round whose model the bundle holds, or None without rounds.

    The best is the first round with the best ``selection_metric`` (the one
    the recorder kept); the last without any score.
    """
    rounds = run.rounds or ()
    if not rounds:
        return None
    if which == "last":
        return rounds[-1].server_round
    metric = stored_selection(run.config, run.schema)
    scored = [(s, r.server_round) for r in rounds
              if (s := round_score(r, metric)) is not None]
    if not scored:
        return rounds[-1].server_round
    best = max(s for s, _ in scored)
    return next(n for s, n in scored if s == best)


def run_preprocess(run: RunView) -> Preprocess | None:
    """Return what turns raw rows into the run's model input, if it is known."""
    task = run.config.get("task")
    if task in BUILTIN_DATASETS:
        data = load_builtin_partition(str(task), (1, 1), alpha=None, seed=0)
        assert data.feature_mean is not None and data.feature_scale is not None
        return Preprocess(data.feature_mean, data.feature_scale)
    saved = (run.schema or {}).get("preprocess")
    return Preprocess.from_dict(saved) if saved is not None else None


def _make(store: Store, run_id: int, which: str) -> bytes:
    """Build the bundle (blocking: reads the store and the model file)."""
    run = store.get_run(run_id)
    if run is None:
        raise _error(web.HTTPNotFound, "no such run")
    server_round = bundle_round(run, which)
    if server_round is None:
        raise _error(web.HTTPNotFound, "no model for this run (yet)")
    preprocess = run_preprocess(run)
    if preprocess is None or run.schema is None:
        raise _error(
            web.HTTPConflict,
            "this run has no shared preprocessing (each site scaled its own data,"
            " or it trains on synthetic data): a bundle could not be used",
        )
    params = store.load_model(run_id, server_round)
    if params is None:
        params = store.load_best_model(run_id, server_round)
    if params is None:
        raise _error(web.HTTPNotFound, f"the model of round {server_round} is gone")
    return build_bundle(run, which, server_round, params, preprocess)


async def download_bundle(request: web.Request) -> web.Response:
    """Return a run's best or last model as a bundle (any reader)."""
    run_id = parse_int64(request.match_info["run_id"])
    if run_id is None:
        raise _error(web.HTTPNotFound, "no such run")
    which = request.query.get("which", "last")
    query = [k for k in request.query if k != "which"] + request.query.getall(
        "which", []
    )
    if which not in WHICH or len(query) > 1:
        raise _error(web.HTTPBadRequest, "which must be best or last (no other query)")
    body = await asyncio.to_thread(_make, request.app[STORE], run_id, which)
    request.app[AUDIT].record(
        access.request_role(request), "model.download", target=str(run_id),
        remote=request.remote, detail=f"bundle {which}",
    )
    name = f"fednet-run-{run_id}-{which}.zip"
    return web.Response(
        body=body,
        content_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _error(status: type[web.HTTPException], message: str) -> web.HTTPException:
    return access.json_error(status, message)
