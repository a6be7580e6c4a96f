"""The SQLite schema of the run history, and its rows as typed views."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from fednet.records import RoundRecord
from fednet.views import PrivacyView, RoundView, RunView

SCHEMA = """
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
CREATE TABLE IF NOT EXISTS sites (
    name TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    revoked_at REAL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    outcome TEXT NOT NULL,
    remote TEXT,
    detail TEXT
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""

ROUND_COLUMNS = (
    "server_round, num_clients, num_examples, loss, accuracy, federated_loss,"
    " federated_accuracy, test_loss, test_accuracy, duration_s, finished_at,"
    " clients, detail"
)


def round_view(record: RoundRecord, duration_s: float, now: float) -> RoundView:
    """Return a completed round as the store keeps it and the API shows it."""
    return RoundView(
        server_round=record.server_round,
        num_clients=record.num_clients,
        num_examples=record.num_examples,
        loss=record.loss,
        accuracy=record.accuracy,
        federated_loss=record.federated_loss,
        federated_accuracy=record.federated_accuracy,
        test_loss=record.test_loss,
        test_accuracy=record.test_accuracy,
        duration_s=duration_s,
        finished_at=now,
        clients=tuple(record.clients),
        fit_metrics=dict(record.fit_metrics),
        evaluated_clients=tuple(record.evaluated_clients),
        dropped=tuple(record.dropped),
        rejected={str(k): v for k, v in record.rejected.items()},
        client_metrics={str(k): dict(v) for k, v in record.client_metrics.items()},
        epsilon=record.epsilon,
        dropouts_recovered=record.dropouts_recovered,
        quantization_error=record.quantization_error,
        metrics=dict(record.metrics),
        test_metrics=dict(record.test_metrics),
        confusion=record.confusion,
    )


def round_from_row(
    row: sqlite3.Row, per_client: dict[int, dict[str, Any]]
) -> RoundView:
    """Return a stored round with its clients' metrics."""
    detail = json.loads(row["detail"])
    return RoundView(
        server_round=row["server_round"],
        num_clients=row["num_clients"],
        num_examples=row["num_examples"],
        loss=row["loss"],
        accuracy=row["accuracy"],
        federated_loss=row["federated_loss"],
        federated_accuracy=row["federated_accuracy"],
        test_loss=row["test_loss"],
        test_accuracy=row["test_accuracy"],
        duration_s=row["duration_s"],
        finished_at=row["finished_at"],
        clients=tuple(json.loads(row["clients"])),
        fit_metrics=detail["fit_metrics"],
        evaluated_clients=tuple(detail["evaluated_clients"]),
        dropped=tuple(detail["dropped"]),
        rejected=detail["rejected"],
        client_metrics=per_client.get(row["server_round"], {}),
        epsilon=detail.get("epsilon"),  # absent from rounds before dp
        dropouts_recovered=detail.get("dropouts_recovered"),
        quantization_error=detail.get("quantization_error"),
        # absent from rounds before the metrics of issue 12
        metrics=detail.get("metrics", {}),
        test_metrics=detail.get("test_metrics", {}),
        confusion=_rows(detail.get("confusion")),
    )


def run_from_row(
    row: sqlite3.Row,
    *,
    rounds: tuple[RoundView, ...] | None = None,
    latest: tuple[float | None, float | None] | None = None,
    spent: float | None = None,
    recovered: int = 0,
) -> RunView:
    """Return a stored run (with its rounds or latest metrics when given).

    ``spent`` is the epsilon of the run's latest round (None without dp).
    """
    config = json.loads(row["config"])
    return RunView(
        id=row["id"],
        status=row["status"],
        config=config,
        schema=json.loads(row["schema"]) if row["schema"] else None,
        error=row["error"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        completed_rounds=row["completed_rounds"],
        rounds=rounds,
        latest=latest,
        privacy=PrivacyView.of_run(config, spent, recovered),
    )


def _rows(table: list[list[int]] | None) -> tuple[tuple[int, ...], ...] | None:
    return None if table is None else tuple(tuple(row) for row in table)


def spent_epsilon(detail: str | None) -> float | None:
    """Return the epsilon a stored round's detail records, or None."""
    if detail is None:
        return None
    value = json.loads(detail).get("epsilon")
    return float(value) if value is not None else None


def recovered_dropouts(detail: str | None) -> int:
    """Return the dropouts a run recovered up to a stored round (0 without)."""
    if detail is None:
        return 0
    return int(json.loads(detail).get("dropouts_recovered_run") or 0)
