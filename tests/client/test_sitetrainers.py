"""A site's trainers: found once, broken ones left out with the reason, run checks."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import numpy as np
import pytest

from fednet.client.runner import ClientRunner
from fednet.client.status import status_dict
from fednet.client.sitetrainers import SiteTrainers, error_code, site_context
from fednet.client.trainer import Trainer
from fednet.exceptions import ArchitectureMismatch
from fednet.fitconfig import FitConfig
from fednet.learning import models
from fednet.learning.datasets import load_builtin_partition
from fednet.learning.trainers.registry import TrainerNotFound, site_trainer_names
from fednet.protocol import Evaluate, Message, Status, Trainers
from fednet.settings import ClientSettings
from fednet.trainer_messages import TRAINERS_VERSION
from tests.client.conftest import Peer, ScriptServer

PLUGINS = "tests.trainers.plugins"


def _config(**overrides: Any) -> FitConfig:
    config: dict[str, Any] = {
        "task": "digits", "model": "logreg", "classes": [str(d) for d in range(10)],
        "local_epochs": 1, "batch_size": 32, "learning_rate": 0.1, "seed": 0,
        "server_round": 1, "hidden_units": 64,
    }
    return FitConfig.from_dict({**config, **overrides})


def _trainer(*flags: str) -> Trainer:
    data = load_builtin_partition("digits", (1, 3), alpha=0.5, seed=0)
    site = SiteTrainers(site_trainer_names(flags))
    site.check(site_context(data, 1))
    return Trainer(data, client_number=1, trainers=site)


def test_broken_plugins_are_left_out_with_their_reason() -> None:
    """A missing module or a failing factory is unavailable; the others serve."""
    trainer = _trainer(
        f"sgd={PLUGINS}:sgd_classifier", f"bad={PLUGINS}:broken", "gone=no_such.mod:f"
    )

    assert [t["name"] for t in trainer.announce()] == ["logreg", "mlp", "sgd"]
    assert all(len(t["fingerprint"]) == 64 for t in trainer.announce())
    failures = trainer.trainers.failures
    assert "RuntimeError: this plug-in is broken" in failures["bad"]
    assert "cannot import module 'no_such.mod'" in failures["gone"]


def test_the_status_page_lists_the_trainers_and_the_unavailable_ones() -> None:
    """An operator sees on the status page why a plug-in is left out."""
    trainer = _trainer(f"bad={PLUGINS}:broken")
    settings = ClientSettings(dataset="digits", name="site-1")
    runner = ClientRunner(settings, trainer, random.Random(0))

    shown = status_dict(runner, "digits")

    assert shown["trainers"] == "logreg, mlp"
    assert "this plug-in is broken" in shown["unavailable_trainers"]["bad"]


def test_a_run_naming_a_trainer_the_site_lacks_is_a_clear_error() -> None:
    """The site raises TrainerNotFound (sent as trainer_unavailable); no crash."""
    trainer = _trainer()
    params = models.init_params("logreg", 64, 10)

    with pytest.raises(TrainerNotFound, match="no trainer 'cnn'") as caught:
        trainer.fit(params, _config(model="cnn"))
    assert error_code(caught.value) == "trainer_unavailable"


def test_parameters_of_another_architecture_are_refused_before_training() -> None:
    """Another hidden size: ArchitectureMismatch naming the array (sent as such)."""
    trainer = _trainer(f"wide={PLUGINS}:mlp16")
    params = models.init_params("mlp", 64, 10, hidden_units=32)

    with pytest.raises(ArchitectureMismatch, match=r"W1: expected float32 \(64, 16\)"):
        trainer.fit(params, _config(model="wide"))
    assert error_code(ArchitectureMismatch("x")) == "architecture_mismatch"


def test_initial_parameters_come_with_their_architecture() -> None:
    """A site builds the run's trainer and sends its arrays and their description."""
    trainer = _trainer(f"sgd={PLUGINS}:sgd_classifier")

    arch, params = trainer.initial(_config(model="sgd"))

    assert [a["shape"] for a in arch["arrays"]] == [[10, 64], [10]]
    assert [p.shape for p in params] == [(10, 64), (10,)]
    assert all(p.dtype == np.float64 for p in params)


def test_a_plugin_federates_through_the_client_trainer() -> None:
    """fit and evaluate of a site's sklearn trainer; its evaluation is sent as is."""
    trainer = _trainer(f"sgd={PLUGINS}:sgd_classifier")
    _, params = trainer.initial(_config(model="sgd"))
    config = _config(model="sgd", statistics=True)

    new, n, _ = trainer.fit(params, config)
    loss, n_val, metrics = trainer.evaluate(new, config)

    assert n > 0 and n_val > 0 and loss > 0
    assert metrics["accuracy"] > 0.5


def _digits_runner(url: str) -> ClientRunner:
    settings = ClientSettings(
        server=url, name="site-1", dataset="digits", partition=(1, 3),
        backoff_initial_s=0.01, backoff_max_s=0.05,
    )
    data = load_builtin_partition("digits", (1, 3), alpha=0.5, seed=0)
    return ClientRunner(settings, Trainer(data, client_number=1), random.Random(0))


async def test_trainers_go_only_to_a_coordinator_that_knows_them(
    coordinator: ScriptServer,
) -> None:
    """A welcome of version 1 (previous release) hears no trainers; 2 does."""
    heard: list[Message] = []

    async def old(peer: Peer) -> None:
        await peer.welcome(protocol_version=1)
        await peer.send(Evaluate(1, 1, _config(), models.init_params("logreg", 64, 10)))
        heard.append(await peer.receive())

    async def new(peer: Peer) -> None:
        await peer.welcome(protocol_version=TRAINERS_VERSION)
        heard.append(await peer.receive())

    for script in (old, new):
        scripted = await coordinator(script)
        task = asyncio.create_task(_digits_runner(scripted.url).run())
        try:
            await scripted.finished()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    assert heard[0] == Status("evaluating")
    assert isinstance(heard[1], Trainers)
    assert [t["name"] for t in heard[1].trainers] == ["logreg", "mlp"]
    assert all(len(t["fingerprint"]) == 64 for t in heard[1].trainers)
