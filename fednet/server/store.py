"""Run history in SQLite, with the checkpoint files of fednet.server.checkpoints."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


from fednet.records import RoundRecord
from fednet.server.checkpoints import CheckpointFiles
from fednet.server.rows import (
    ROUND_COLUMNS,
    SCHEMA,
    round_from_row,
    round_view,
    run_from_row,
    recovered_dropouts,
    spent_epsilon,
)
from fednet.typing import NDArrays
from fednet.views import RoundView, RunView

ACTIVE_STATUSES = ("queued", "running")


class Store(CheckpointFiles):
    """SQLite-backed run history plus per-round model checkpoints.

    Writes (which fsync) may be called from a worker thread while the event
    loop reads: each connection is used under its own lock, and reads go to
    a second connection that WAL lets run beside a write.

    Args:
        state_dir: folder for ``fednet.sqlite3`` and ``models/``; created.
    """

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.models_dir = state_dir / "models"
        self.models_dir.mkdir(parents=True, exist_ok=True)
        self._db = self._connect()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self._reader = self._connect()
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            self.state_dir / "fednet.sqlite3",
            isolation_level=None,
            check_same_thread=False,
        )
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA synchronous=FULL")
        return db

    def close(self) -> None:
        """Close the database connections."""
        with self._write_lock, self._read_lock:
            self._reader.close()
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the write connection for one IMMEDIATE transaction."""
        with self._write_lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def write(self, sql: str, args: tuple[Any, ...]) -> sqlite3.Cursor:
        """Run one write statement (the sites and audit tables use it too)."""
        with self._write_lock:
            return self._db.execute(sql, args)

    def read(self, sql: str, args: tuple[Any, ...]) -> list[sqlite3.Row]:
        """Run one query on the reading connection and return its rows."""
        with self._read_lock:
            return self._reader.execute(sql, args).fetchall()

    # -- runs -----------------------------------------------------------------

    def create_run(self, config: dict[str, Any], now: float) -> int:
        """Insert a queued run and return its id."""
        cur = self.write(
            "INSERT INTO runs (status, config, created_at) VALUES ('queued', ?, ?)",
            (json.dumps(config), now),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def mark_running(
        self, run_id: int, schema: dict[str, Any] | None, now: float
    ) -> None:
        """Record that a run started, with the data schema it trains on."""
        self.write(
            "UPDATE runs SET status='running', schema=?,"
            " started_at=COALESCE(started_at, ?) WHERE id=?",
            (json.dumps(schema), now, run_id),
        )

    def import_run(
        self,
        config: dict[str, Any],
        schema: dict[str, Any] | None,
        server_round: int,
        params: NDArrays,
        now: float,
    ) -> int:
        """Store a model trained elsewhere (an uploaded bundle) as a finished run.

        The run has no rounds; its model is the checkpoint of ``server_round``,
        counted as completed only once the file is written, so a later run can
        warm-start from it.
        """
        cur = self.write(
            "INSERT INTO runs (status, config, schema, created_at, started_at,"
            " finished_at) VALUES ('finished', ?, ?, ?, ?, ?)",
            (json.dumps(config), json.dumps(schema), now, now, now),
        )
        assert cur.lastrowid is not None
        self.save_model(cur.lastrowid, server_round, params)
        self.write(
            "UPDATE runs SET completed_rounds=? WHERE id=?",
            (server_round, cur.lastrowid),
        )
        return cur.lastrowid

    def end_run(self, run_id: int, status: str, error: str | None, now: float) -> None:
        """Record a run's final status (finished, failed or stopped)."""
        self.write(
            "UPDATE runs SET status=?, error=?, finished_at=? WHERE id=?",
            (status, error, now, run_id),
        )

    def unfinished_runs(self) -> list[RunView]:
        """Return runs a previous server process left queued or running."""
        rows = self.read(
            "SELECT * FROM runs WHERE status IN (?, ?) ORDER BY id", ACTIVE_STATUSES
        )
        return [run_from_row(row) for row in rows]

    def get_run(self, run_id: int, *, with_rounds: bool = True) -> RunView | None:
        """Return a run as the API shows it, or None if there is no such run."""
        rows = self.read(
            "SELECT runs.*, r.detail AS last_detail FROM runs LEFT JOIN rounds r"
            " ON r.run_id = runs.id AND r.server_round = runs.completed_rounds"
            " WHERE runs.id=?",
            (run_id,),
        )
        if not rows:
            return None
        rounds = tuple(self.get_rounds(run_id)) if with_rounds else None
        last = rows[0]["last_detail"]
        return run_from_row(rows[0], rounds=rounds, spent=spent_epsilon(last),
                            recovered=recovered_dropouts(last))

    def list_runs(self, limit: int = 100) -> list[RunView]:
        """Return the newest runs first, with their latest round's metrics."""
        rows = self.read(
            "SELECT runs.*, r.loss AS last_loss, r.accuracy AS last_accuracy,"
            " r.detail AS last_detail FROM runs"
            " LEFT JOIN rounds r ON r.run_id = runs.id"
            " AND r.server_round = runs.completed_rounds"
            " ORDER BY runs.id DESC LIMIT ?",
            (limit,),
        )
        return [
            run_from_row(
                row,
                latest=(row["last_loss"], row["last_accuracy"]),
                spent=spent_epsilon(row["last_detail"]),
                recovered=recovered_dropouts(row["last_detail"]),
            )
            for row in rows
        ]

    # -- rounds ---------------------------------------------------------------

    def _secagg_detail(self, run_id: int, view: RoundView) -> dict[str, Any]:
        """Return a secure round's dropouts recovered, the run's, its error bound."""
        if view.dropouts_recovered is None:
            return {}
        before = self.read(
            "SELECT detail FROM rounds WHERE run_id=? AND server_round=?",
            (run_id, view.server_round - 1),
        )
        total = recovered_dropouts(before[0]["detail"] if before else None)
        return {
            "dropouts_recovered": view.dropouts_recovered,
            "dropouts_recovered_run": total + view.dropouts_recovered,
            "quantization_error": view.quantization_error,
        }

    def record_round(
        self, run_id: int, record: RoundRecord, duration_s: float, now: float
    ) -> RoundView:
        """Store a completed round, advance the run's completed rounds.

        Returns:
            The round as the API shows it (no need to read it back).
        """
        view = round_view(record, duration_s, now)
        detail = {
            "fit_metrics": view.fit_metrics,
            "evaluated_clients": list(view.evaluated_clients),
            "dropped": list(view.dropped),
            "rejected": view.rejected,
            "epsilon": view.epsilon,
            **self._secagg_detail(run_id, view),
            "metrics": view.metrics,
            "test_metrics": view.test_metrics,
            "confusion": view.to_dict()["confusion"],
        }
        with self.transaction() as db:
            db.execute(
                f"INSERT OR REPLACE INTO rounds (run_id, {ROUND_COLUMNS})"
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
        return view

    def get_rounds(self, run_id: int, *, since_round: int = 0) -> list[RoundView]:
        """Return a run's completed rounds in order, with per-client metrics.

        Args:
            run_id: the run.
            since_round: only rounds after this one.
        """
        rows = self.read(
            f"SELECT {ROUND_COLUMNS} FROM rounds WHERE run_id=? AND server_round>?"
            " ORDER BY server_round",
            (run_id, since_round),
        )
        per_client: dict[int, dict[str, Any]] = {}
        for row in self.read(
            "SELECT server_round, client_id, metrics FROM client_results"
            " WHERE run_id=? AND server_round>?",
            (run_id, since_round),
        ):
            per_client.setdefault(row["server_round"], {})[row["client_id"]] = (
                json.loads(row["metrics"])
            )
        return [round_from_row(row, per_client) for row in rows]

    def latest_model_path(self, run_id: int) -> Path | None:
        """Return the .npz of a run's latest completed round, or None."""
        run = self.get_run(run_id, with_rounds=False)
        if run is None:
            return None
        path = self._model_path(run_id, run.completed_rounds)
        return path if path.exists() else None
