"""The audit log: append-only, batched, bounded, newest first."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from fednet.server import audit as audit_module
from fednet.server.audit import MAX_FIELD_CHARS, AuditLog, flushing
from fednet.server.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh store in a temporary state dir."""
    s = Store(tmp_path)
    yield s
    s.close()


def test_entries_are_written_and_listed_newest_first(store: Store) -> None:
    """What was recorded comes back, with its fields, newest first, paged by id."""
    clock = iter(float(t) for t in range(100, 200))
    log = AuditLog(store, clock=lambda: next(clock))
    log.record("admin", "run.launch", target="run 1", remote="198.18.0.7")
    log.record("anonymous", "login.failed", outcome="refused", detail="wrong token")
    log.record("site:a", "client.refused", outcome="refused", detail="revoked")
    assert log.write_pending() == 3
    entries = log.entries(limit=2)
    assert [e.action for e in entries] == ["client.refused", "login.failed"]
    older = log.entries(limit=10, before_id=entries[-1].id)
    fields = [(e.actor, e.action, e.target, e.outcome, e.remote, e.at) for e in older]
    assert fields == [("admin", "run.launch", "run 1", "ok", "198.18.0.7", 100.0)]


def test_the_table_refuses_updates_and_deletes(store: Store, tmp_path: Path) -> None:
    """Nobody rewrites history through SQLite either: triggers refuse it."""
    log = AuditLog(store)
    log.record("admin", "run.stop", target="run 3")
    log.write_pending()
    db = sqlite3.connect(tmp_path / "fednet.sqlite3")
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE audit SET actor = 'viewer'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("DELETE FROM audit")
    finally:
        db.close()
    assert [e.actor for e in log.entries()] == ["admin"]


def test_a_flood_is_bounded_and_counted(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past MAX_PENDING queued entries, the rest are counted in one entry."""
    monkeypatch.setattr(audit_module, "MAX_PENDING", 5)
    log = AuditLog(store)
    for i in range(12):
        log.record("anonymous", "client.refused", outcome="refused", detail=str(i))
    assert log.write_pending() == 6
    newest = log.entries(limit=1)[0]
    assert newest.action == "audit.dropped"
    assert newest.detail is not None and newest.detail.startswith("7 entries")


def test_peer_chosen_fields_are_clipped_and_actions_checked(store: Store) -> None:
    """A peer cannot grow the table with a huge name; unknown actions are bugs."""
    log = AuditLog(store)
    log.record("site:" + "x" * 5000, "client.refused", detail="d" * 5000)
    log.write_pending()
    entry = log.entries()[0]
    assert len(entry.actor) == MAX_FIELD_CHARS
    assert entry.detail is not None and len(entry.detail) == MAX_FIELD_CHARS
    with pytest.raises(ValueError, match="unknown audit action"):
        log.record("admin", "run.delete")


async def test_the_flusher_writes_in_the_background_and_at_shutdown(
    store: Store,
) -> None:
    """Entries reach the table without a call, and none is lost at shutdown."""
    log = AuditLog(store)
    async with flushing(log):
        log.record("admin", "site.add", target="a")
        for _ in range(100):
            await asyncio.sleep(0.02)
            if log.entries():
                break
        assert [e.target for e in log.entries()] == ["a"]
        log.record("admin", "site.revoke", target="a")
    assert [e.action for e in log.entries()] == ["site.revoke", "site.add"]
