"""Run history in SQLite and checkpoints of each run's global model as .npz."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from fednet.records import RoundRecord
from fednet.typing import NDArrays

logger = logging.getLogger(__name__)

ACTIVE_STATUSES = ("queued", "running")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    status TEXT NOT NULL,
    config TEXT NOT NULL,
    schema TEXT,
    error TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    completed_rounds INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS rounds (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    server_round INTEGER NOT NULL,
    num_clients INTEGER NOT NULL,
    num_examples INTEGER NOT NULL,
    loss REAL,
    accuracy REAL,
    federated_loss REAL,
    federated_accuracy REAL,
    test_loss REAL,
    test_accuracy REAL,
    duration_s REAL NOT NULL,
    finished_at REAL NOT NULL,
    clients TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (run_id, server_round)
);
CREATE TABLE IF NOT EXISTS client_results (
    run_id INTEGER NOT NULL,
    server_round INTEGER NOT NULL,
    client_id TEXT NOT NULL,
    metrics TEXT NOT NULL,
    PRIMARY KEY (run_id, server_round, client_id)
);
"""

_ROUND_COLUMNS = (
    "server_round, num_clients, num_examples, loss, accuracy, federated_loss,"
    " federated_accuracy, test_loss, test_accuracy, duration_s, finished_at,"
    " clients, detail"
)


class Store:
    """SQLite-backed run history plus per-round model checkpoints.

    Args:
        state_dir: folder for ``fednet.sqlite3`` and ``models/``; created.
    """

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.models_dir = state_dir / "models"
        self.models_dir.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(state_dir / "fednet.sqlite3", isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- runs -----------------------------------------------------------------

    def create_run(self, config: dict[str, Any], now: float) -> int:
        """Insert a queued run and return its id."""
        cur = self._db.execute(
            "INSERT INTO runs (status, config, created_at) VALUES ('queued', ?, ?)",
            (json.dumps(config), now),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def mark_running(
        self, run_id: int, schema: dict[str, Any] | None, now: float
    ) -> None:
        """Record that a run started, with the data schema it trains on."""
        self._db.execute(
            "UPDATE runs SET status='running', schema=?,"
            " started_at=COALESCE(started_at, ?) WHERE id=?",
            (json.dumps(schema), now, run_id),
        )

    def end_run(self, run_id: int, status: str, error: str | None, now: float) -> None:
        """Record a run's final status (finished, failed or stopped)."""
        self._db.execute(
            "UPDATE runs SET status=?, error=?, finished_at=? WHERE id=?",
            (status, error, now, run_id),
        )

    def unfinished_runs(self) -> list[dict[str, Any]]:
        """Return runs a previous server process left queued or running."""
        rows = self._db.execute(
            "SELECT id FROM runs WHERE status IN (?, ?) ORDER BY id", ACTIVE_STATUSES
        ).fetchall()
        return [self.get_run(row["id"]) for row in rows]  # type: ignore[misc]

    def get_run(
        self, run_id: int, *, with_rounds: bool = True
    ) -> dict[str, Any] | None:
        """Return a run as the API shows it, or None if there is no such run."""
        row = self._db.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            return None
        run = _run_from_row(row)
        if with_rounds:
            run["rounds"] = self.get_rounds(run_id)
        return run

    def list_runs(self, limit: int = 100) -> list[dict[str, Any]]:
        """Return the newest runs first, with their latest round's metrics."""
        rows = self._db.execute(
            "SELECT runs.*, r.loss AS last_loss, r.accuracy AS last_accuracy"
            " FROM runs LEFT JOIN rounds r ON r.run_id = runs.id"
            " AND r.server_round = runs.completed_rounds"
            " ORDER BY runs.id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        runs = []
        for row in rows:
            run = _run_from_row(row)
            run["loss"], run["accuracy"] = row["last_loss"], row["last_accuracy"]
            runs.append(run)
        return runs

    # -- rounds ---------------------------------------------------------------

    def record_round(
        self, run_id: int, record: RoundRecord, duration_s: float, now: float
    ) -> None:
        """Store a completed round and advance the run's completed rounds."""
        detail = {
            "fit_metrics": record.fit_metrics,
            "evaluated_clients": list(record.evaluated_clients),
            "dropped": list(record.dropped),
            "rejected": record.rejected,
        }
        with self._transaction() as db:
            db.execute(
                f"INSERT OR REPLACE INTO rounds (run_id, {_ROUND_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    record.server_round,
                    record.num_clients,
                    record.num_examples,
                    record.loss,
                    record.accuracy,
                    record.federated_loss,
                    record.federated_accuracy,
                    record.test_loss,
                    record.test_accuracy,
                    duration_s,
                    now,
                    json.dumps(list(record.clients)),
                    json.dumps(detail),
                ),
            )
            db.executemany(
                "INSERT OR REPLACE INTO client_results VALUES (?, ?, ?, ?)",
                [
                    (run_id, record.server_round, cid, json.dumps(metrics))
                    for cid, metrics in record.client_metrics.items()
                ],
            )
            db.execute(
                "UPDATE runs SET completed_rounds=? WHERE id=?",
                (record.server_round, run_id),
            )

    def get_rounds(self, run_id: int, *, since_round: int = 0) -> list[dict[str, Any]]:
        """Return a run's completed rounds in order, with per-client metrics.

        Args:
            run_id: the run.
            since_round: only rounds after this one (the live view needs just
                the newest, not the whole history every round).
        """
        rows = self._db.execute(
            f"SELECT {_ROUND_COLUMNS} FROM rounds WHERE run_id=? AND server_round>?"
            " ORDER BY server_round",
            (run_id, since_round),
        ).fetchall()
        per_client: dict[int, dict[str, Any]] = {}
        for row in self._db.execute(
            "SELECT server_round, client_id, metrics FROM client_results"
            " WHERE run_id=? AND server_round>?",
            (run_id, since_round),
        ):
            per_client.setdefault(row["server_round"], {})[row["client_id"]] = (
                json.loads(row["metrics"])
            )
        rounds = []
        for row in rows:
            entry = {k: row[k] for k in row.keys() if k not in ("clients", "detail")}
            entry["clients"] = json.loads(row["clients"])
            entry.update(json.loads(row["detail"]))
            entry["client_metrics"] = per_client.get(row["server_round"], {})
            rounds.append(entry)
        return rounds

    # -- models ---------------------------------------------------------------

    def _model_path(self, run_id: int, server_round: int) -> Path:
        return self.models_dir / f"run-{run_id}-round-{server_round}.npz"

    def save_model(self, run_id: int, server_round: int, params: NDArrays) -> Path:
        """Write a checkpoint atomically (temp file, fsync, rename).

        Older checkpoints of the run are removed by :meth:`prune_models` once
        the round is committed, so a crash in between never loses the model of
        the last recorded round.
        """
        path = self._model_path(run_id, server_round)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, *params)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return path

    def prune_models(self, run_id: int, keep_round: int) -> None:
        """Delete a run's checkpoints other than ``keep_round``."""
        for path in self.models_dir.glob(f"run-{run_id}-round-*.npz"):
            if path != self._model_path(run_id, keep_round):
                path.unlink(missing_ok=True)

    def load_model(self, run_id: int, server_round: int) -> NDArrays | None:
        """Load a checkpoint, or return None when it does not exist."""
        path = self._model_path(run_id, server_round)
        if not path.exists():
            return None
        with np.load(path, allow_pickle=False) as data:
            return [data[f"arr_{i}"] for i in range(len(data.files))]

    def latest_model_path(self, run_id: int) -> Path | None:
        """Return the .npz of a run's latest completed round, or None."""
        run = self.get_run(run_id, with_rounds=False)
        if run is None:
            return None
        path = self._model_path(run_id, run["completed_rounds"])
        return path if path.exists() else None


def _run_from_row(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "status": row["status"],
        "config": json.loads(row["config"]),
        "schema": json.loads(row["schema"]) if row["schema"] else None,
        "error": row["error"],
        "created_at": row["created_at"],
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
        "completed_rounds": row["completed_rounds"],
    }
