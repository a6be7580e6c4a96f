"""Who an asynchronous run knows, and what each of its clients is doing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from fednet.config import RunConfig
from fednet.typing import ClientId


@dataclass
class Task:
    """What a client was sent: ``fit`` or ``evaluate`` of a version, at a tick."""

    kind: str
    version: int
    tick: int


@dataclass
class Roster:
    """The clients of an asynchronous run: known, busy (tasks, folds) or idle.

    ``tick`` counts the driver's timeout checks; a task remembers the tick it
    was sent at, so that it can be given up a number of checks later.
    """

    known: list[ClientId] = field(default_factory=list)
    tasks: dict[ClientId, Task] = field(default_factory=dict)
    folding: dict[ClientId, int] = field(default_factory=dict)  # -> staleness
    tick: int = 0
    _last_sent: dict[ClientId, int] = field(default_factory=dict)
    _sends: int = 0

    def set_known(self, available: Sequence[ClientId]) -> None:
        """Replace the known clients by the driver's eligible ones."""
        self.known = sorted(set(available))

    def forget(self, client_id: ClientId) -> Task | None:
        """Forget a client that left; return the task it had, if any."""
        if client_id in self.known:
            self.known.remove(client_id)
        return self.tasks.pop(client_id, None)

    @property
    def busy(self) -> bool:
        """Return whether a task is out or an update is being folded."""
        return bool(self.tasks or self.folding)

    def training(self) -> int:
        """Return how many clients train or have an update being folded."""
        fits = sum(1 for t in self.tasks.values() if t.kind == "fit")
        return fits + len(self.folding)

    def room(self, config: RunConfig) -> int:
        """Return how many more clients may train now (``max_concurrency``)."""
        limit = config.max_concurrency or len(self.known)
        return max(0, limit - self.training())

    def buffer_target(self, config: RunConfig) -> int:
        """Return K: ``buffer_size``, at most the clients known without a limit."""
        if config.max_concurrency:
            return config.buffer_size
        return max(1, min(config.buffer_size, len(self.known)))

    def idle(self) -> list[ClientId]:
        """Return the known clients with nothing to do, longest idle first."""
        idle = [c for c in self.known if c not in self.tasks and c not in self.folding]
        return sorted(idle, key=lambda c: (self._last_sent.get(c, -1), c))

    def assign(self, clients: Sequence[ClientId], kind: str, version: int) -> int:
        """Record that ``clients`` were sent a task; return the send's number."""
        if not self.tasks:
            self.tick += 1  # a new wait: its timeout starts now
        self._sends += 1
        for client_id in clients:
            self.tasks[client_id] = Task(kind, version, self.tick)
            self._last_sent[client_id] = self._sends
        return self._sends

    def expired(self, ticks: int) -> list[ClientId]:
        """Return the clients whose task was sent more than ``ticks`` checks ago."""
        return [c for c, t in self.tasks.items() if self.tick - t.tick > ticks]

    def fit_versions(self) -> set[int]:
        """Return the versions clients train on."""
        return {t.version for t in self.tasks.values() if t.kind == "fit"}

    def evaluating(self, version: int) -> bool:
        """Return whether a client still evaluates ``version``."""
        return any(
            t.kind == "evaluate" and t.version == version for t in self.tasks.values()
        )

    def drop_fits(self) -> None:
        """Stop waiting for any training client (the last version is made)."""
        self.tasks = {c: t for c, t in self.tasks.items() if t.kind != "fit"}
