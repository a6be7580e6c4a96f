"""Launch a run over the HTTP API and follow it with a progress bar and a table."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any, TextIO

import aiohttp

from fednet.exceptions import FednetError
from fednet.views import PrivacyView, ProgressView, RoundView, RunView

TABLE_HEADER = (
    f"{'round':>5}  {'clients':>7}  {'examples':>8}  {'loss':>8}  {'accuracy':>8}"
    f"  {'seconds':>7}"
)
EPSILON_HEADER = f"  {'epsilon':>8}"
"""The column a dp run's table adds: the epsilon spent once the round is played."""
CONSENSUS_HEADER = f"  {'consensus':>9}"
"""The column a gossip run's table adds: the step's consensus distance."""


class ApiError(FednetError):
    """The server answered an API call with an error."""


def _headers(admin_token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_token}"} if admin_token else {}


async def launch_run(
    http: aiohttp.ClientSession,
    server: str,
    config: dict[str, Any],
    admin_token: str | None = None,
) -> int:
    """POST a RunConfig and return the new run's id.

    Raises:
        ApiError: with the server's reasons (one per invalid field, or a conflict).
    """
    async with http.post(
        f"{server}/api/runs", json=config, headers=_headers(admin_token)
    ) as resp:
        try:
            body = await resp.json(content_type=None)
        except ValueError:
            text = (await resp.text())[:200]
            raise ApiError(f"{resp.status} {text}") from None
        if resp.status != 201:
            fields = body.get("fields") or {}
            detail = "; ".join(f"{k}: {v}" for k, v in sorted(fields.items()))
            raise ApiError(
                f"{resp.status} {body.get('error')}{': ' if detail else ''}{detail}"
            )
        return int(body["id"])


def format_round(
    entry: RoundView, *, epsilon: bool = False, consensus: bool = False
) -> str:
    """Return one table row for a completed round (with its epsilon if asked)."""

    def num(value: float | None, spec: str) -> str:
        return format(value, spec) if value is not None else "-"

    row = (
        f"{entry.server_round:>5}  {entry.num_clients:>7}  "
        f"{entry.num_examples:>8}  {num(entry.loss, '>8.4f')}  "
        f"{num(entry.accuracy, '>8.4f')}  {entry.duration_s:>7.2f}"
    )
    if consensus:  # a gossip step
        row += f"  {num(entry.fit_metrics.get('consensus_distance'), '>9.4g')}"
    return row + f"  {num(entry.epsilon, '>8.4f')}" if epsilon else row


def _uses_dp(run: RunView) -> bool:
    return bool(run.config.get("dp", "off") != "off")


def _bar(run: RunView, progress: ProgressView | None, width: int = 30) -> str:
    total = int(run.config["rounds"])
    done = len(run.rounds or ())
    filled = int(width * done / total) if total else width
    detail = ""
    if progress is not None and progress.phase in ("fit", "evaluate"):
        mode = run.config.get("mode")
        unit = {"async": "version", "gossip": "step"}.get(str(mode), "round")
        detail = (
            f" {unit} {progress.server_round}: {progress.phase}"
            f" {len(progress.reported or ())}/{len(progress.selected or ())}"
        )
    elif progress is not None and progress.phase == "waiting":
        detail = " waiting for clients"
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}{detail}"


def _privacy_line(privacy: PrivacyView) -> str:
    budget = f" of a budget of {privacy.budget:g}" if privacy.budget else ""
    spent, delta = privacy.epsilon or 0.0, privacy.delta or 0.0
    return f"privacy: epsilon {spent:.4f}{budget} at delta {delta:g}"


async def get_run(http: aiohttp.ClientSession, server: str, run_id: int) -> RunView:
    """Return a run (with its rounds) as ``GET /api/runs/{id}`` shows it.

    Raises:
        ApiError: on an HTTP error status.
    """
    run, _ = await _get_run(http, server, run_id)
    return run


async def _get_run(
    http: aiohttp.ClientSession, server: str, run_id: int
) -> tuple[RunView, ProgressView | None]:
    async with http.get(f"{server}/api/runs/{run_id}") as resp:
        if resp.status != 200:
            raise ApiError(f"GET run {run_id}: HTTP {resp.status}")
        body = await resp.json()
    progress = body.get("progress")
    return RunView.from_dict(body), (
        ProgressView.from_dict(progress) if progress is not None else None
    )


async def follow_run(
    http: aiohttp.ClientSession,
    server: str,
    run_id: int,
    *,
    out: TextIO = sys.stdout,
    interval_s: float = 0.5,
) -> RunView:
    """Poll a run until it ends, printing a row per finished round.

    On a terminal a progress bar is redrawn in place; elsewhere only rows are
    printed. Connection errors are retried (the server may be restarting).

    Returns:
        The final run, with its rounds.
    """
    tty = out.isatty()
    printed = 0
    started = time.monotonic()
    print(f"run {run_id}: following {server}/api/runs/{run_id}", file=out)
    header = False
    while True:
        try:
            run, progress = await _get_run(http, server, run_id)
        except (aiohttp.ClientError, OSError):
            if tty:
                print("\r(server unreachable, retrying)", end="", file=out, flush=True)
            await asyncio.sleep(1.0)
            continue
        if tty:
            print("\r\033[K", end="", file=out)
        dp, gossip = _uses_dp(run), run.config.get("mode") == "gossip"
        if not header:  # a dp run's table has an epsilon column
            title = TABLE_HEADER + (CONSENSUS_HEADER if gossip else "")
            title += EPSILON_HEADER if dp else ""
            if run.config.get("mode") == "async":  # FedBuff: model versions
                title = title.replace("round", "  ver", 1)
            elif gossip:
                title = title.replace("round", " step", 1)
            print(title, file=out)
            header = True
        rounds = run.rounds or ()
        for entry in rounds[printed:]:
            print(format_round(entry, epsilon=dp, consensus=gossip), file=out,
                  flush=True)
        printed = len(rounds)
        if run.ended:
            elapsed = time.monotonic() - started
            reason = f" ({run.error})" if run.error else ""
            print(f"run {run_id} {run.status} in {elapsed:.1f} s{reason}", file=out)
            if dp and run.privacy is not None:
                print(_privacy_line(run.privacy), file=out)
            return run
        if tty:
            print(_bar(run, progress), end="", file=out, flush=True)
        await asyncio.sleep(interval_s)
