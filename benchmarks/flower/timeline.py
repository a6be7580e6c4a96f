"""Per-round timestamps and accuracies recorded inside a Flower server process.

Flower calls the strategy's centralised evaluation once before round 1 and
once after every round; timing those calls gives each round's duration
without touching Flower's code. The server writes the timeline as JSON.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

logger = logging.getLogger(__name__)


def read_peak_rss_mb(pid: int | str = "self") -> float:
    """Return the peak resident set size (VmHWM) of a process in MB, 0 if gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e6
    return 0.0


@dataclass
class Timeline:
    """What a server process saw: when each round ended and what it scored.

    ``ready`` is when the initial evaluation returned with every client
    connected: round 1 starts there. Round r lasts from the end of evaluation
    r-1 to the start of evaluation r.
    """

    workload: str
    num_params: int = 0
    ready: float = 0.0
    eval_start: dict[int, float] = field(default_factory=dict)
    eval_end: dict[int, float] = field(default_factory=dict)
    loss: dict[int, float] = field(default_factory=dict)
    accuracy: dict[int, float] = field(default_factory=dict)

    def evaluate(
        self,
        server_round: int,
        score: Callable[[], tuple[float, float]] | None,
        wait_ready: Callable[[], None] | None = None,
    ) -> tuple[float, float] | None:
        """Time one centralised evaluation; before round 1, wait for every client.

        Args:
            server_round: 0 before training, then the round just finished.
            score: computes (loss, accuracy), or None when nothing is scored.
            wait_ready: blocks until all clients are connected (round 0 only).

        Returns:
            (loss, accuracy), or None without ``score``.
        """
        self.eval_start[server_round] = time.perf_counter()
        result = score() if score is not None else None
        if result is not None:
            self.loss[server_round], self.accuracy[server_round] = result
        if server_round == 0 and wait_ready is not None:
            wait_ready()
        now = time.perf_counter()
        self.eval_end[server_round] = now
        if server_round == 0:
            self.ready = now
        logger.info("round %d evaluated: %s", server_round, result)
        return result

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form: rounds with durations, accuracies and peak RSS."""
        rounds = []
        for r in sorted(k for k in self.eval_start if k > 0):
            rounds.append(
                {
                    "server_round": r,
                    "duration_s": self.eval_start[r]
                    - self.eval_end.get(r - 1, self.ready),
                    "loss": self.loss.get(r),
                    "accuracy": self.accuracy.get(r),
                }
            )
        last = max(self.eval_end.values(), default=self.ready)
        return {
            "workload": self.workload,
            "num_params": self.num_params,
            "initial_accuracy": self.accuracy.get(0),
            "rounds": rounds,
            "rounds_wall_s": last - self.ready if rounds else None,
            "peak_rss_mb": read_peak_rss_mb(),
            "pid": os.getpid(),
        }

    def write(self, path: str | Path) -> None:
        """Write :meth:`to_dict` to ``path`` atomically."""
        target = Path(path)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1))
        tmp.replace(target)
