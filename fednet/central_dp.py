"""Central differential privacy as a strategy: Poisson sampling, DP-FedAvg, a budget.

``dp=central`` wraps FedAvg or FedProx (McMahan et al., 2018, Algorithm 1):
each round every available site takes part independently with probability
``q`` (``clients_per_round / available`` at the run's first round, 1 when
``clients_per_round`` is 0), the coordinator clips each site's delta, averages
with the fixed denominator ``n = q * available`` and adds Gaussian noise
(:class:`~fednet.privacy.dp.DPFedAvg`). The RDP accountant turns ``q``, the
noise multiplier and the rounds played into a client-level epsilon; with a
target, the run ends before the round that would exceed it.

``q`` is fixed once and kept with the checkpoints (:meth:`CentralDP.server_state`)
so a resumed run accounts as the uninterrupted one does. The noise comes from
the operating system's entropy, never from the run's seed: the seed is shown
in the API, and noise anyone can regenerate protects nothing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fednet.config import RunConfig
from fednet.exceptions import AggregationError
from fednet.fedopt import ServerState
from fednet.privacy.accountant import PrivacyBudget
from fednet.privacy.adaptive import adapt_clip_norm, update_noise_multiplier
from fednet.privacy.dp import DPFedAvg
from fednet.typing import ClientId, NDArrays

logger = logging.getLogger(__name__)

MAX_DRAWS = 100
"""Poisson draws of one round before the machine's ``min_clients`` rule decides."""

_STATE_KEYS = ("dp_clip_norm", "dp_sampling_rate")


class _Release(DPFedAvg):
    """DPFedAvg that reports its first release (for adaptive clipping)."""

    def __init__(
        self,
        reference: NDArrays,
        *,
        on_release: Callable[[DPFedAvg], None],
        **kwargs: Any,
    ) -> None:
        super().__init__(reference, **kwargs)
        self._on_release: Callable[[DPFedAvg], None] | None = on_release

    def result(self) -> NDArrays:
        """Return the noisy model; the first call also reports the round."""
        out = super().result()
        if self._on_release is not None:
            report, self._on_release = self._on_release, None
            report(self)
        return out


class CentralDP:
    """FedAvg or FedProx with Poisson sampling, clipping, central noise and a budget.

    Args:
        name: the wrapped strategy's name (``fedavg`` or ``fedprox``).
        noise_multiplier: noise std over the clip norm (the accountant's z).
        clip_norm: the first round's L2 bound of one site's delta.
        adaptive_clip: move the clip norm towards the median update norm.
        delta: the accountant's delta.
        target_epsilon: the budget, or None for none.
        clients_per_round: the expected sites per round at the first round (0: all).
        min_clients: how many sites a round needs (draws below it are redrawn).
        noise_rng: the generator of the noise (default: OS entropy).
    """

    def __init__(
        self,
        name: str,
        *,
        noise_multiplier: float,
        clip_norm: float,
        adaptive_clip: bool = False,
        delta: float = 1e-5,
        target_epsilon: float | None = None,
        clients_per_round: int = 0,
        min_clients: int = 1,
        noise_rng: np.random.Generator | None = None,
    ) -> None:
        self.name = name
        self.noise_multiplier = noise_multiplier
        self.clip_norm = clip_norm
        self.adaptive_clip = adaptive_clip
        self.delta = delta
        self.target_epsilon = target_epsilon
        self.clients_per_round = clients_per_round
        self.min_clients = min_clients
        self.sampling_rate: float | None = None
        self._noise_rng = noise_rng or np.random.default_rng()
        self._available = 0
        self._spent: dict[int, float] = {}

    @classmethod
    def from_config(
        cls, config: RunConfig, noise_rng: np.random.Generator | None = None
    ) -> CentralDP:
        """Return the central DP strategy of a ``dp=central`` RunConfig."""
        return cls(
            config.strategy,
            noise_multiplier=config.dp_noise_multiplier,
            clip_norm=config.dp_clip_norm,
            adaptive_clip=config.dp_adaptive_clip,
            delta=config.dp_delta,
            target_epsilon=config.dp_target_epsilon or None,
            clients_per_round=config.clients_per_round,
            min_clients=config.min_clients,
            noise_rng=noise_rng,
        )

    # -- sampling and aggregation ----------------------------------------------

    def fix_sampling_rate(self, available: int) -> float:
        """Return ``q``, fixing it from the sites available the first time.

        Raises:
            AggregationError: if ``q`` is not fixed yet and no site is available.
        """
        if self.sampling_rate is None:
            if available < 1:
                raise AggregationError("dp: no site available to fix the sampling rate")
            per_round = self.clients_per_round or available
            self.sampling_rate = min(1.0, per_round / available)
            logger.info(
                "privacy: dp=central, sampling rate %.4g (%d of %d sites), noise"
                " multiplier %g, delta %g, target epsilon %s", self.sampling_rate,
                per_round, available, self.noise_multiplier, self.delta,
                self.target_epsilon or "none",
            )
        return self.sampling_rate

    def sample_clients(
        self, available: Sequence[ClientId], rng: np.random.Generator
    ) -> list[ClientId]:
        """Select each site independently with probability ``q`` (Poisson sampling).

        A draw with fewer than ``min_clients`` sites is drawn again from the
        same round-seeded ``rng`` (deterministic for a seed), up to
        :data:`MAX_DRAWS` times; docs/privacy.md says what this costs.
        """
        ordered = sorted(available)
        q = self.fix_sampling_rate(len(ordered))
        self._available = len(ordered)
        if q >= 1.0:
            return ordered
        picks: list[ClientId] = []
        for draw in range(MAX_DRAWS):
            keep = rng.random(len(ordered)) < q
            picks = [c for c, k in zip(ordered, keep) if k]
            if len(picks) >= self.min_clients:
                if draw:
                    logger.info("dp: %d Poisson draws below min_clients", draw)
                break
        return picks

    @property
    def expected_clients(self) -> float:
        """Return ``n = q * available`` of the round being sampled."""
        return (self.sampling_rate or 1.0) * max(self._available, 1)

    def _count_stddev(self) -> float:
        # Andrew et al. (2021) suggest n / 20; at least z, so that the
        # updates keep a noise multiplier within 16 % of z.
        return max(self.expected_clients / 20, self.noise_multiplier)

    def aggregator(self, global_params: NDArrays) -> DPFedAvg:
        """Return the round's DP-FedAvg aggregator (clip, fixed denominator, noise)."""
        z = self.noise_multiplier
        if self.adaptive_clip:
            z = update_noise_multiplier(z, self._count_stddev())
        return _Release(
            global_params,
            clip_norm=self.clip_norm,
            noise_multiplier=z,
            expected_clients=self.expected_clients,
            rng=self._noise_rng,
            on_release=self._released,
        )

    def _released(self, aggregate: DPFedAvg) -> None:
        """Adapt the clip norm once a round's model is released."""
        if not self.adaptive_clip:
            return
        before = self.clip_norm
        self.clip_norm = adapt_clip_norm(
            before,
            unclipped_count=aggregate.unclipped_count,
            clients=aggregate.count,
            expected_clients=aggregate.expected_clients,
            count_stddev=self._count_stddev(),
            rng=self._noise_rng,
        )
        logger.info("dp: clip norm %.4g -> %.4g", before, self.clip_norm)

    # -- state that survives a resume ------------------------------------------

    def server_state(self) -> ServerState:
        """Return the clip norm and the sampling rate (NaN until fixed)."""
        q = math.nan if self.sampling_rate is None else self.sampling_rate
        return {
            "dp_clip_norm": np.array([self.clip_norm], dtype=np.float64),
            "dp_sampling_rate": np.array([q], dtype=np.float64),
        }

    def load_server_state(self, state: ServerState, global_params: NDArrays) -> None:
        """Restore the clip norm and sampling rate of a checkpoint.

        Raises:
            AggregationError: if the state is not a central DP state.
        """
        if sorted(state) != sorted(_STATE_KEYS) or any(
            state[k].shape != (1,) for k in _STATE_KEYS
        ):
            raise AggregationError(f"dp state holds {sorted(state)}, not a dp state")
        clip, q = float(state["dp_clip_norm"][0]), float(state["dp_sampling_rate"][0])
        if not (math.isfinite(clip) and clip > 0) or not (math.isnan(q) or 0 < q <= 1):
            raise AggregationError(f"dp state out of range: clip {clip}, rate {q}")
        self.clip_norm = clip
        self.sampling_rate = None if math.isnan(q) else q

    # -- accounting -------------------------------------------------------------

    def epsilon(self, server_round: int) -> float | None:
        """Return the epsilon spent once ``server_round`` rounds are played.

        None until the sampling rate is fixed (before the first round).
        """
        if self.sampling_rate is None:
            return None
        if server_round not in self._spent:
            budget = PrivacyBudget(
                noise_multiplier=self.noise_multiplier,
                sampling_rate=self.sampling_rate,
                delta=self.delta,
            )
            self._spent[server_round] = budget.spent(server_round)
        return self._spent[server_round]

    def budget_stop(self, server_round: int, available: int | None) -> str | None:
        """Return why ``server_round`` may not start (over budget), or None.

        Args:
            server_round: the round about to start.
            available: sites available now (fixes ``q`` at the first round);
                None when the rate is already fixed.
        """
        if self.target_epsilon is None:
            return None
        if available is not None:
            self.fix_sampling_rate(available)
        spent = self.epsilon(server_round)
        if spent is None or spent <= self.target_epsilon:
            return None
        return (
            f"privacy budget: round {server_round} would spend epsilon"
            f" {spent:.4f} > target {self.target_epsilon:g}"
        )


def budget_stop(
    strategy: object, server_round: int, available: int | None
) -> str | None:
    """Return why a DP run may not start ``server_round``; None for other strategies."""
    if isinstance(strategy, CentralDP):
        return strategy.budget_stop(server_round, available)
    return None


def round_epsilon(strategy: object, server_round: int) -> float | None:
    """Return the epsilon spent after ``server_round`` of a DP run, else None."""
    return strategy.epsilon(server_round) if isinstance(strategy, CentralDP) else None
