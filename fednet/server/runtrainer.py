"""The trainer a run names: which sites may take part, and where it starts from.

Eligibility is decided in two steps (docs/models.md, "What the coordinator
checks"):

1. **By name, at selection.** A site takes part only if it announced the
   run's trainer (``trainers``; a client of an earlier release counts as
   having the built-ins ``logreg`` and ``mlp``).
2. **By architecture, at first contact.** The fingerprint a site announces
   describes its trainer for the site's own data, not for the run's (the
   run's preprocessing fixes the input width, its classes the outputs, its
   ``hidden_units`` the MLP). So each site checks the run's parameters
   against its trainer built for the run before it trains; one that cannot
   take them answers ``architecture_mismatch`` (or ``trainer_unavailable``)
   and is ineligible for the rest of the run with that reason, while the run
   goes on with the others.

The initial parameters come from the coordinator for the built-ins. For any
other trainer the coordinator, which never runs a site's code, asks one
eligible site (``init_request``), drawn with the run's seed among the sites
that announced the most common fingerprint of that trainer, and checks what
comes back against the architecture that comes with it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections import Counter
from collections.abc import Callable

import numpy as np

from fednet.config import RunConfig
from fednet.exceptions import FednetError
from fednet.fitconfig import FitConfig
from fednet.learning.trainers.architecture import Architecture, check_parameters
from fednet.learning.trainers.builtin import BUILTIN
from fednet.protocol import Error, InitRequest, InitResult, Message
from fednet.server.registry import ClientConn, Registry
from fednet.server.setup import RunSetup
from fednet.server.store import Store
from fednet.typing import ClientId, NDArrays

logger = logging.getLogger(__name__)

EXCLUDING_CODES = frozenset({"architecture_mismatch", "trainer_unavailable"})
"""Errors of a site that make it ineligible for the rest of the run."""
MAX_NOTE = 500

Post = Callable[[tuple[ClientId, ...], Message], None]


class NoInitialParameters(FednetError):
    """No eligible site gave usable initial parameters (the reasons joined)."""


def offered(conn: ClientConn) -> dict[str, str]:
    """Return a client's trainers by name, with their fingerprints ("" unknown)."""
    if conn.trainers is None:
        return {name: "" for name in BUILTIN}
    return {t["name"]: t["fingerprint"] for t in conn.trainers}


class RunTrainer:
    """What the run's trainer decides about its sites, for one run's driver.

    Args:
        config: the run's configuration (its ``model`` names the trainer).
    """

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.excluded: dict[ClientId, str] = {}
        self._pending: tuple[ClientId, asyncio.Future[NDArrays]] | None = None

    def serves(self, conn: ClientConn) -> bool:
        """Return whether a client offers the run's trainer (its name)."""
        return self.config.task == "synthetic" or self.config.model in offered(conn)

    def ineligibility(self, conn: ClientConn) -> str | None:
        """Return why a client cannot take part for its trainer, or None."""
        if conn.client_id in self.excluded:
            return self.excluded[conn.client_id]
        if self.serves(conn):
            return None
        have = ", ".join(sorted(offered(conn))) or "none"
        return f"the site has no trainer {self.config.model!r} (it has {have})"

    def check(self, setup: RunSetup, conn: ClientConn, run_id: int) -> Error | None:
        """Mark a client eligible for the run, or return the error telling it why."""
        reason = setup.ineligibility(conn.hello)
        code = "schema_mismatch"
        if reason is None and (reason := self.ineligibility(conn)):
            code = "trainer_mismatch"
        conn.eligible, conn.note = reason is None, reason
        if reason is None:
            return None
        logger.warning("client %s cannot join run %d: %s", conn.client_id, run_id,
                       reason)
        return Error(code, reason, run_id)

    def error(self, conn: ClientConn, msg: Error) -> bool:
        """Take a site's error; return whether it excludes the site from the run."""
        pending = self._pending
        if pending is not None and pending[0] == conn.client_id:
            if not pending[1].done():
                pending[1].set_exception(ValueError(f"{msg.code}: {msg.message}"))
        if msg.code not in EXCLUDING_CODES:
            return False
        reason = f"{msg.code}: {msg.message}"[:MAX_NOTE]
        self.excluded[conn.client_id] = reason
        conn.eligible, conn.note = False, reason
        logger.warning("client %s is ineligible for this run: %s", conn.client_id,
                       reason)
        return True

    def init_received(self, conn: ClientConn, msg: InitResult) -> None:
        """Check a site's initial parameters; resolve the wait for them.

        The arrays must be exactly those the architecture describes (count,
        shapes, dtypes) and finite; they are copied out of the frame's buffer.
        """
        pending = self._pending
        if pending is None or pending[0] != conn.client_id or pending[1].done():
            logger.warning("ignored initial parameters from %s: not asked",
                           conn.client_id)
            return
        try:
            arch = Architecture.from_dict(msg.architecture)
            check_parameters(arch, msg.parameters)
            if not all(np.isfinite(p).all() for p in msg.parameters):
                raise ValueError("initial parameters are not all finite")
        except ValueError as e:
            pending[1].set_exception(e)
            return
        logger.info("run starts from the %s of %s (fingerprint %s)", arch.kind,
                    conn.client_id, arch.fingerprint[:12])
        pending[1].set_result([np.array(p, copy=True) for p in msg.parameters])

    def init_order(self, eligible: list[ClientConn]) -> list[ClientConn]:
        """Return the sites to ask for initial parameters, in order.

        Those that announced the most common fingerprint of the trainer come
        first, each group shuffled with the run's seed.
        """
        prints = {c.client_id: offered(c).get(self.config.model, "") for c in eligible}
        counts = Counter(prints.values())
        ranked = sorted(eligible, key=lambda c: c.client_id)
        random.Random(self.config.seed).shuffle(ranked)
        return sorted(ranked, key=lambda c: -counts[prints[c.client_id]])

    async def initial_parameters(
        self, run_id: int, config: FitConfig, eligible: list[ClientConn], post: Post
    ) -> NDArrays:
        """Ask eligible sites in turn until one gives usable initial parameters.

        Each has ``round_timeout_s`` to answer; one that fails or answers
        something unusable is ineligible for the run with the reason.

        Raises:
            NoInitialParameters: if none did.
        """
        reasons = []
        loop = asyncio.get_running_loop()
        for conn in self.init_order(eligible):
            future: asyncio.Future[NDArrays] = loop.create_future()
            self._pending = (conn.client_id, future)
            post((conn.client_id,), InitRequest(run_id, config))
            try:
                async with asyncio.timeout(self.config.round_timeout_s):
                    return await future
            except (TimeoutError, ValueError) as e:
                why = str(e) or f"no answer within {self.config.round_timeout_s:g} s"
                reason = f"initial parameters refused: {why}"[:MAX_NOTE]
                self.excluded.setdefault(conn.client_id, reason)
                conn.eligible, conn.note = False, self.excluded[conn.client_id]
                reasons.append(f"{conn.client_id}: {why}")
                logger.warning("client %s: %s", conn.client_id, reason)
            finally:
                self._pending = None
        raise NoInitialParameters(
            "no eligible site gave initial parameters of trainer"
            f" {self.config.model!r}: " + ("; ".join(reasons) or "none eligible")
        )


async def site_started(
    trainer: RunTrainer,
    run_id: int,
    setup: RunSetup,
    registry: Registry,
    post: Post,
    store: Store,
) -> RunSetup:
    """Return the setup with a site's initial parameters, saved as round 0.

    A setup that has its parameters (the coordinator's trainer, or a resumed
    run's checkpoint) is returned as it is.

    Raises:
        NoInitialParameters: if no eligible site gave usable ones.
    """
    if setup.parameters:
        return setup
    config = FitConfig.for_round(trainer.config, 1, setup.classes, setup.preprocess)
    eligible = [c for c in registry.connected() if c.eligible]
    params = await trainer.initial_parameters(run_id, config, eligible, post)
    await asyncio.to_thread(store.save_model, run_id, 0, params)
    return dataclasses.replace(setup, parameters=params)
