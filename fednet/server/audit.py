"""The audit log: an append-only table of who did what, when, from where.

Handlers call :meth:`AuditLog.record`, which never blocks: entries queue in
memory and a flusher writes them in batches from a worker thread, so a flood
of refused connections costs one fsync per batch, not one per attempt. The
queue is bounded (:data:`MAX_PENDING`); what a flood pushes past it is counted
and written as one ``audit.dropped`` entry. SQLite triggers refuse any
``UPDATE`` or ``DELETE`` of the table.

Actors: ``admin`` (the admin token or an admin login), ``viewer``,
``site:NAME`` (a site credential), ``join-token`` (a client with the shared
token), ``anonymous``, and ``cli`` for commands run on the state dir.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any, Callable

from fednet.server.store import Store

logger = logging.getLogger(__name__)

MAX_PENDING = 10_000
"""Entries waiting for the flusher; a flood beyond this is counted, not kept."""

FLUSH_INTERVAL_S = 0.2
MAX_FIELD_CHARS = 500
"""The longest actor, target, remote or detail kept (peers choose some of them)."""

ACTIONS = (
    "run.launch",
    "run.import",
    "run.stop",
    "login",
    "login.failed",
    "logout",
    "site.add",
    "site.revoke",
    "client.refused",
    "model.download",
    "stats.collect",
    "audit.dropped",
)


@dataclass(frozen=True)
class AuditEntry:
    """One audit row; ``outcome`` is ``ok`` or ``refused``."""

    at: float
    actor: str
    action: str
    target: str | None = None
    outcome: str = "ok"
    remote: str | None = None
    detail: str | None = None
    id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the entry as ``GET /api/audit`` lists it."""
        return asdict(self)


def _clip(value: str | None) -> str | None:
    return None if value is None else value[:MAX_FIELD_CHARS]


class AuditLog:
    """Queue audit entries and write them to the store's ``audit`` table.

    Args:
        store: the coordinator's store (or one opened on a state dir).
        clock: wall-clock time, for the entries' ``at``.
    """

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._pending: deque[AuditEntry] = deque()
        self._dropped = 0
        self._wake = asyncio.Event() if _in_loop() else None

    def record(
        self,
        actor: str,
        action: str,
        *,
        target: str | None = None,
        outcome: str = "ok",
        remote: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Queue one entry; never blocks, never raises for a full queue."""
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}")
        if len(self._pending) >= MAX_PENDING:
            self._dropped += 1
            return
        entry = AuditEntry(
            at=self.clock(),
            actor=_clip(actor) or "anonymous",
            action=action,
            target=_clip(target),
            outcome=outcome,
            remote=_clip(remote),
            detail=_clip(detail),
        )
        self._pending.append(entry)
        if self._wake is not None:
            self._wake.set()

    def write_pending(self) -> int:
        """Write every queued entry now (blocking); return how many."""
        batch = list(self._pending)
        self._pending.clear()
        if self._dropped:
            batch.append(
                AuditEntry(
                    at=self.clock(),
                    actor="fednet",
                    action="audit.dropped",
                    outcome="refused",
                    detail=f"{self._dropped} entries over the queue of {MAX_PENDING}",
                )
            )
            self._dropped = 0
        if batch:
            with self.store.transaction() as db:
                db.executemany(
                    "INSERT INTO audit (at, actor, action, target, outcome, remote,"
                    " detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [_row(e) for e in batch],
                )
        return len(batch)

    async def run_flusher(self) -> None:
        """Write queued entries every :data:`FLUSH_INTERVAL_S` until cancelled."""
        assert self._wake is not None, "create the AuditLog inside the event loop"
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await asyncio.to_thread(self.write_pending)
            except Exception:
                logger.exception("could not write the audit log")
            await asyncio.sleep(FLUSH_INTERVAL_S)

    def entries(
        self, *, limit: int = 100, before_id: int | None = None
    ) -> list[AuditEntry]:
        """Return up to ``limit`` written entries, newest first."""
        rows = self.store.read(
            "SELECT id, at, actor, action, target, outcome, remote, detail FROM audit"
            " WHERE id < ? ORDER BY id DESC LIMIT ?",
            (before_id if before_id is not None else 2**63 - 1, limit),
        )
        return [AuditEntry(**dict(row)) for row in rows]


def _row(e: AuditEntry) -> tuple[Any, ...]:
    return (e.at, e.actor, e.action, e.target, e.outcome, e.remote, e.detail)


def _in_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@asynccontextmanager
async def flushing(audit: AuditLog) -> AsyncIterator[None]:
    """Run the flusher while the app serves; write what is left at shutdown."""
    task = asyncio.create_task(audit.run_flusher())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.to_thread(audit.write_pending)
