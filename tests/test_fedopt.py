"""FedOpt server optimisers against direct NumPy formulas; their state on disk."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fednet.config import STRATEGIES, STRATEGY_FIELDS, RunConfig
from fednet.exceptions import AggregationError, ConfigError
from fednet.fedopt import FedAdam, FedAvgM, optimizer_from_config
from fednet.machine import RoundCheckpoint
from fednet.protocol import Fit, FitResult
from fednet.records import RoundFinished
from fednet.rounds import RoundMachine
from fednet.server.setup import prepare_run
from fednet.server.store import Store
from fednet.strategies import FedOpt, Strategy, strategy_from_config
from fednet.typing import ClientId, NDArrays

FEDOPT = ("fedadam", "fedyogi", "fedadagrad", "fedavgm")
F64 = Any  # float64 arrays, loosely typed for the arithmetic of the formulas
Formula = Callable[[F64, F64, dict[str, F64]], F64]


def _model(dtype: Any = np.float64) -> list[Any]:
    rng = np.random.default_rng(1)
    return [rng.normal(size=(2, 3)).astype(dtype), rng.normal(size=4).astype(dtype)]


def _round_updates(model: list[Any], server_round: int) -> list[tuple[Any, int]]:
    """Three clients' models near ``model``, with unequal weights."""
    rng = np.random.default_rng(server_round)
    return [
        ([(p + rng.normal(scale=0.1, size=p.shape)).astype(p.dtype) for p in model], n)
        for n in (1, 3, 7)
    ]


def _play(strategy: Strategy, model: NDArrays, rounds: range) -> list[Any]:
    for server_round in rounds:
        aggregator = strategy.aggregator(model)
        for update, n in _round_updates(model, server_round):
            aggregator.add(update, n)
        model = aggregator.result()
    return model


def _adam(x: F64, d: F64, s: dict[str, F64]) -> F64:
    s["m"] = 0.9 * s["m"] + 0.1 * d
    s["v"] = 0.99 * s["v"] + 0.01 * d * d
    return x + 0.1 * s["m"] / (np.sqrt(s["v"]) + 1e-9)


def _yogi(x: F64, d: F64, s: dict[str, F64]) -> F64:
    s["m"] = 0.9 * s["m"] + 0.1 * d
    s["v"] = s["v"] - 0.01 * d * d * np.sign(s["v"] - d * d)
    return x + 0.01 * s["m"] / (np.sqrt(s["v"]) + 1e-3)


def _adagrad(x: F64, d: F64, s: dict[str, F64]) -> F64:
    s["v"] = s["v"] + d * d
    return x + 0.1 * d / (np.sqrt(s["v"]) + 1e-9)


def _avgm(x: F64, d: F64, s: dict[str, F64]) -> F64:
    s["m"] = 0.5 * s["m"] + (x - (x + d))  # momentum on the pseudo-gradient x - mean
    return x - 0.7 * s["m"]


@pytest.mark.parametrize(
    ("strategy", "fields", "formula"),
    [
        ("fedadam", {}, _adam),
        ("fedyogi", {}, _yogi),
        ("fedadagrad", {}, _adagrad),
        ("fedavgm", {"server_learning_rate": 0.7, "server_momentum": 0.5}, _avgm),
    ],
)
def test_optimiser_matches_the_formula_over_three_rounds(
    strategy: str, fields: dict[str, float], formula: Formula
) -> None:
    """Flower's defaults; each round's d is the weighted mean minus the model."""
    config = RunConfig.from_dict({"strategy": strategy, **fields})
    model = _model()
    got = _play(strategy_from_config(config), model, range(1, 4))

    expected = [p.copy() for p in model]
    states = [{"m": np.zeros_like(p), "v": np.zeros_like(p)} for p in model]
    for server_round in range(1, 4):
        updates = _round_updates(expected, server_round)
        total = sum(n for _, n in updates)
        for i, x in enumerate(expected):
            mean = sum(u[i] * n for u, n in updates) / total
            expected[i] = formula(x, mean - x, states[i])
    for g, e, start in zip(got, expected, model):
        assert g.dtype == e.dtype
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-14)
        assert not np.allclose(g, start, atol=1e-3)  # it moved


def test_fedavgm_without_momentum_is_fedavg() -> None:
    """Learning rate 1 (the default) and no momentum: the new model is the mean."""
    model = _model(np.float32)
    got = _play(strategy_from_config(RunConfig(strategy="fedavgm")), model, range(1, 2))
    fedavg = _play(strategy_from_config(RunConfig()), model, range(1, 2))
    for g, f in zip(got, fedavg):
        np.testing.assert_allclose(g, f, rtol=1e-6)
    avgm = optimizer_from_config(RunConfig(strategy="fedavgm"))
    assert avgm is not None and avgm.state() == {}


@pytest.mark.parametrize("strategy", FEDOPT)
def test_state_saved_and_restored_resumes_bit_identically(
    strategy: str, tmp_path: Path
) -> None:
    """Stop after round 2, reload model and state from disk, play round 3: same bits.

    A float32 model keeps float32 moments; the arithmetic is float64.
    """
    config = RunConfig(strategy=strategy, server_momentum=0.9)
    model = _model(np.float32)
    straight = _play(strategy_from_config(config), model, range(1, 4))

    first = strategy_from_config(config)
    halfway = _play(first, model, range(1, 3))
    store = Store(tmp_path / "state")
    state = first.server_state()
    assert state is not None
    assert all(a.dtype == np.float32 for a in state.values())
    store.save_server_state(1, 2, state)
    store.save_model(1, 2, halfway)
    loaded_state, loaded_model = store.load_server_state(1, 2), store.load_model(1, 2)
    store.close()
    assert loaded_state is not None and loaded_model is not None
    assert loaded_state.keys() == state.keys()
    for name, array in state.items():
        assert np.array_equal(loaded_state[name], array)
        assert loaded_state[name].dtype == array.dtype

    again = strategy_from_config(config)
    again.load_server_state(loaded_state, loaded_model)
    resumed = _play(again, loaded_model, range(3, 4))
    for s, r in zip(straight, resumed):
        assert s.dtype == r.dtype == np.float32
        assert np.array_equal(s, r)


def test_prune_removes_old_states_and_the_model_file_holds_the_model_only(
    tmp_path: Path,
) -> None:
    """The kept round keeps its model and state; the .npz users download is clean."""
    store = Store(tmp_path / "state")
    for server_round in (1, 2):
        store.save_server_state(4, server_round, {"m_0": np.ones(2, np.float32)})
        store.save_model(4, server_round, [np.zeros(2, np.float32)])
    store.save_model(40, 1, [np.zeros(1, np.float32)])  # another run: kept
    store.prune_models(4, keep_round=2)
    names = sorted(p.name for p in store.models_dir.iterdir())
    assert names == [
        "run-4-round-2.npz", "run-4-round-2.state.npz", "run-40-round-1.npz"
    ]
    with np.load(store.models_dir / "run-4-round-2.npz") as npz:
        assert npz.files == ["arr_0"]
    assert store.load_server_state(4, 1) is None
    store.close()


def test_resume_without_the_state_of_the_last_round_refuses(tmp_path: Path) -> None:
    """A FedAdam checkpoint without its state is missing, not a silent reset."""
    store = Store(tmp_path / "state")
    config = RunConfig(task="synthetic", strategy="fedadam", synthetic_params=3)
    store.save_model(1, 2, [np.zeros(3, np.float32)])
    with pytest.raises(FileNotFoundError, match="round 2"):
        prepare_run(store, 1, config, 2, [], None)
    store.save_server_state(1, 2, {"m_0": np.ones(3, np.float32),
                                   "v_0": np.ones(3, np.float32)})
    setup = prepare_run(store, 1, config, 2, [], None)
    assert setup.server_state is not None and set(setup.server_state) == {"m_0", "v_0"}
    fedavg = prepare_run(store, 1, RunConfig(task="synthetic"), 2, [], None)
    assert fedavg.server_state is None
    store.close()


@pytest.mark.parametrize(
    "state",
    [
        {"m_0": np.zeros(3, np.float32)},  # v_0 missing
        {"m_0": np.zeros(4, np.float32), "v_0": np.zeros(3, np.float32)},
        {"m_0": np.zeros(3, np.float64), "v_0": np.zeros(3, np.float32)},
    ],
)
def test_a_state_that_does_not_fit_the_model_is_refused(state: dict[str, Any]) -> None:
    """Names, shapes and dtypes must be the model's."""
    adam = FedAdam(eta=0.1, beta_1=0.9, beta_2=0.99, tau=1e-9)
    with pytest.raises(AggregationError):
        adam.load_state(state, [np.zeros(3, np.float32)])
    with pytest.raises(AggregationError):
        FedAvgM(server_learning_rate=1.0, server_momentum=0.0).step(
            [np.zeros(3, np.float32)], [np.zeros(2)]
        )


def test_machine_checkpoints_the_state_with_the_round() -> None:
    """FedAdam's rounds end with a RoundCheckpoint holding m and v; FedAvg's do not."""
    a, b = ClientId("a"), ClientId("b")
    for strategy, kind in (("fedadam", RoundCheckpoint), ("fedavg", RoundFinished)):
        config = RunConfig(strategy=strategy, rounds=1, min_clients=2)
        m = RoundMachine(
            run_id=1, config=config, strategy=strategy_from_config(config),
            parameters=[np.zeros(2, np.float32)], classes=None,
            rng=np.random.default_rng(0), federated_evaluate=False,
        )
        m.start_round([a, b])
        fit = m.messages_to_send()[0].message
        assert isinstance(fit, Fit)
        for cid in (a, b):
            m.update_received(cid, _fit_result(fit.server_round))
        event = m.events()[0]
        assert type(event) is kind
        if isinstance(event, RoundCheckpoint):
            assert event.server_state is not None
            assert set(event.server_state) == {"m_0", "v_0"}


def test_resumed_machine_samples_the_clients_the_uninterrupted_one_did() -> None:
    """Without an rng, each round's sample is seeded by [seed, round]."""
    config = RunConfig(rounds=3, min_clients=2, clients_per_round=2, seed=5)
    available = [ClientId(c) for c in "abcdef"]

    def machine(next_round: int) -> RoundMachine:
        return RoundMachine(
            run_id=1, config=config, strategy=strategy_from_config(config),
            parameters=[np.zeros(2, np.float32)], classes=None,
            next_round=next_round, federated_evaluate=False,
        )

    straight, picks = machine(1), []
    for server_round in (1, 2, 3):
        straight.start_round(available)
        picks.append(straight.progress().selected)
        for cid in picks[-1]:
            straight.update_received(cid, _fit_result(server_round))
    resumed = machine(3)
    resumed.start_round(available)
    assert resumed.progress().selected == picks[2]
    assert len(set(picks)) > 1  # the rounds do not all draw the same pair


def _fit_result(server_round: int) -> FitResult:
    return FitResult(1, server_round, 5, {}, [np.ones(2, np.float32)])


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("server_learning_rate", -0.1), ("server_learning_rate", 101.0),
        ("server_momentum", 1.0), ("server_momentum", -0.5),
        ("beta_1", 1.0), ("beta_2", -0.01), ("tau", 1.5), ("tau", "small"),
        ("beta_1", float("nan")),
    ],
)
def test_out_of_range_fedopt_field_is_named(name: str, value: object) -> None:
    """Each bad field is a ConfigError naming it (a 400 per field from the API)."""
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict({"strategy": "fedadam", name: value})
    assert set(info.value.errors) == {name}


def test_fields_say_which_strategies_read_them() -> None:
    """Every FedOpt field is listed with the FedOpt strategies that read it."""
    for strategy in FEDOPT:
        assert strategy in STRATEGIES
        assert isinstance(strategy_from_config(RunConfig(strategy=strategy)), FedOpt)
    assert STRATEGY_FIELDS["server_learning_rate"] == FEDOPT
    assert STRATEGY_FIELDS["server_momentum"] == ("fedavgm",)
    assert STRATEGY_FIELDS["beta_1"] == STRATEGY_FIELDS["beta_2"] == FEDOPT[:2]
    assert STRATEGY_FIELDS["tau"] == FEDOPT[:3]
    config = RunConfig.from_dict(
        {"strategy": "fedyogi", "server_learning_rate": 1, "tau": 0}
    )
    yogi = optimizer_from_config(config)
    assert isinstance(config.server_learning_rate, float)
    assert (getattr(yogi, "eta"), getattr(yogi, "tau")) == (1.0, 1e-3)
