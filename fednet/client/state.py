"""What a client knows about itself, as its status page shows it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ClientState:
    """What the status page shows about this client."""

    state: str = "starting"
    client_id: str | None = None
    connected_since: float | None = None
    connects: int = 0
    last_error: str | None = None
    last_round: dict[str, Any] | None = None
    rounds_trained: int = 0
    started: float = field(default_factory=time.time)
    exit_after_masked: bool = False  # a test hook (fednet client --exit-after-masked)
