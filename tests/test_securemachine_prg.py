"""A secure round masks with AES-128-CTR when every selected site can.

Also: a site's buffers across secure rounds (the global model it keeps, the
masked input it reuses).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from fednet.client.secure import SecureSite
from fednet.config import RunConfig
from fednet.gossip import AES_CTR, CLIENT_CAPABILITIES
from fednet.protocol import Fit, FitResult, Message
from fednet.records import RoundFinished
from fednet.secagg.prg import AES128_CTR, CHACHA20
from fednet.secagg.wire import SecaggRoster, SecaggSetup, SecaggShares
from fednet.securemachine import SecureRoundMachine
from fednet.strategies import strategy_from_config
from fednet.typing import ClientId, NDArrays
from tests.test_securemachine import (
    SITES,
    Harness,
    _params,
    _play,
    _relative,
    _rng,
    _updates,
)


@dataclass
class Recording(Harness):
    """A harness that notes the PRG each site was told."""

    prgs: dict[ClientId, str] = field(default_factory=dict)

    def _deliver(self, client_id: ClientId, message: Message) -> None:
        if isinstance(message, SecaggSetup):
            self.prgs[client_id] = message.prg
        super()._deliver(client_id, message)


def _play_with(
    capabilities: Callable[[ClientId], tuple[str, ...]], params: NDArrays
) -> tuple[Recording, RoundFinished]:
    config = RunConfig.from_dict({"rounds": 1, "min_clients": 2,
                                  "secure_aggregation": True,
                                  "secagg_threshold": 0.7})
    machine = SecureRoundMachine(
        capabilities=capabilities, run_id=1, config=config,
        strategy=strategy_from_config(config), parameters=params, classes=None,
        federated_evaluate=False,
    )
    harness = Recording(machine, _updates(params, SITES))
    machine.start_round(SITES)
    harness.run()
    (end,) = [e for e in machine.events() if isinstance(e, RoundFinished)]
    return harness, end


def test_a_round_masks_with_aes_when_every_site_announced_it() -> None:
    """This release's sites all announce it: AES-128-CTR, same model as plain."""
    assert AES_CTR in CLIENT_CAPABILITIES
    params = _params()
    harness, secure = _play_with(lambda client_id: CLIENT_CAPABILITIES, params)
    _, plain = _play(False, _updates(params, SITES), params)

    assert harness.prgs == {s: AES128_CTR for s in SITES}
    assert secure.record.num_clients == 10
    assert isinstance(plain, RoundFinished)
    assert _relative(secure.parameters, plain.parameters) <= 1e-6


def test_one_site_without_aes_keeps_the_round_on_chacha20() -> None:
    """A site of an earlier release knows ChaCha20 only: the whole round uses it."""
    def capabilities(client_id: ClientId) -> tuple[str, ...]:
        return ("secagg",) if client_id == SITES[3] else CLIENT_CAPABILITIES

    _, plain = _play(False, _updates(_params(), SITES), _params())
    harness, secure = _play_with(capabilities, _params())
    assert harness.prgs == {s: CHACHA20 for s in SITES}
    assert isinstance(plain, RoundFinished)
    assert _relative(secure.parameters, plain.parameters) <= 1e-6


def _secure_round(
    sites: dict[str, SecureSite], server_round: int, model: NDArrays
) -> dict[str, NDArrays]:
    """Play one two-site round by hand; return each site's masked input."""
    names = tuple(sorted(sites))
    adverts = {}
    for name, site in sites.items():
        site.setup(SecaggSetup(1, server_round, names, 2, 1.0, prg=AES128_CTR))
        trained = [p + np.float32(0.01) for p in model]
        fit = Fit(1, server_round, None, model)  # type: ignore[arg-type]
        adverts[name] = site.after_fit(fit, FitResult(1, server_round, 5, {}, trained))
    rows = tuple((n, a.c_public, a.s_public) for n, a in adverts.items())
    sealed = {n: s.step(SecaggRoster(1, server_round, rows, 5))
              for n, s in sites.items()}
    masked = {}
    for name, site in sites.items():
        routed = tuple((sender, data) for sender, shares in sealed.items()
                       for receiver, data in shares.shares if receiver == name)
        reply = site.step(SecaggShares(1, server_round, routed))
        assert isinstance(reply, FitResult)
        masked[name] = reply.parameters
    return masked


def test_a_site_keeps_the_global_model_until_it_masks_then_releases_it() -> None:
    """With a pool to give it back to, no copy: released once encoded, not before."""
    released: list[NDArrays] = []
    sites = {n: SecureSite(n, _rng(n), release=released.append) for n in ("a", "b")}
    model = _params()
    masked = _secure_round(sites, 1, model)

    assert len(released) == 2
    for arrays in released:
        assert all(np.shares_memory(a, m) for a, m in zip(arrays, model))
    # The masked input's buffer is reused by the next round, not allocated anew.
    again = _secure_round(sites, 2, model)
    for name in sites:
        assert np.shares_memory(masked[name][0], again[name][0])
