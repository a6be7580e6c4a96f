"""A client in a gossip step: it announces the capability, averages, then trains."""

from __future__ import annotations

import dataclasses

import numpy as np

from fednet.gossip import relay_arrays
from fednet.protocol import Error, Fit, FitResult, Hello
from tests.client.conftest import (
    Peer,
    RunnerFactory,
    ScriptServer,
    assert_trained,
    fit_config,
    params,
)


async def test_gossip_fit_trains_on_the_mean_of_own_and_peers_models(
    coordinator: ScriptServer, start_runner: RunnerFactory
) -> None:
    """Hello says gossip; a relay of k + 1 models is averaged before training."""
    hellos: list[Hello] = []
    own, peers = params(), [[p * 3 for p in params()], [p * 5 for p in params()]]

    async def script(peer: Peer) -> None:
        hellos.append(await peer.welcome())
        config = dataclasses.replace(fit_config(), peer_models=2)
        await peer.send(Fit(1, 1, config, relay_arrays(own, peers)))
        await peer.expect_status("training")
        await peer.expect_status("sending")
        result = await peer.expect(FitResult)
        assert_trained(result.parameters, [params()[0] * 3])  # (1 + 3 + 5) / 3
        await peer.expect_status("idle")

    server = await coordinator(script)
    start_runner(server.url)
    await server.finished()
    assert "gossip" in hellos[0].capabilities


async def test_malformed_relay_gets_a_client_error_not_a_crash(
    coordinator: ScriptServer, start_runner: RunnerFactory
) -> None:
    """A relay whose array count does not fit k + 1 models is refused, with why."""

    async def script(peer: Peer) -> None:
        await peer.welcome()
        config = dataclasses.replace(fit_config(), peer_models=2)
        await peer.send(Fit(1, 1, config, relay_arrays(params(), [params()])))
        await peer.expect_status("training")
        error = await peer.expect(Error)
        assert error.code == "client_error" and "multiple of 3" in error.message
        await peer.expect_status("idle")
        await peer.send(Fit(1, 2, fit_config(2), params()))  # still serving
        await peer.expect_status("training")
        await peer.expect_status("sending")
        result = await peer.expect(FitResult)
        assert np.isfinite(result.parameters[0]).all()

    server = await coordinator(script)
    start_runner(server.url)
    await server.finished()
