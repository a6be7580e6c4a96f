"""Benchmark workloads W1, W2, Scale, Load and Soak, defined once for both systems.

Both systems run the same local training code (:mod:`fednet.bench.training`)
on the same data, so only the system differs. This module imports with the
standard library alone: a synthetic (W2) process never loads scikit-learn.
"""

from __future__ import annotations

import dataclasses

# The workload and the training code, re-exported: the Flower harness reads
# them from here.
from fednet.bench.spec import FLOAT32_BYTES, Workload
from fednet.bench.training import (
    SYNTHETIC_OFFSET,
    HoldOut,
    evaluate_global,
    initial_params,
    load_client_data,
    load_test_set,
    local_fit,
    local_rng,
    synthetic_params,
    synthetic_update,
)
from fednet.config import STRATEGIES

__all__ = [
    "FLOAT32_BYTES",
    "SYNTHETIC_OFFSET",
    "HoldOut",
    "Workload",
    "evaluate_global",
    "get_workload",
    "initial_params",
    "load_client_data",
    "load_test_set",
    "local_fit",
    "local_rng",
    "make_load",
    "make_soak",
    "make_w2",
    "synthetic_params",
    "synthetic_update",
    "with_strategy",
]

W1 = Workload(
    name="w1",
    kind="accuracy",
    task="digits",
    model="logreg",
    num_clients=10,
    rounds=20,
    local_epochs=5,
    batch_size=32,
    learning_rate=0.1,
    alpha=0.5,
    seed=0,
)

W2_PARAMS: tuple[int, ...] = (1_000_000, 10_000_000)
W2_CLIENTS: tuple[int, ...] = (10, 20, 50)
W2_ROUNDS = 3


def _p_label(num_params: int) -> str:
    exponent = len(str(num_params)) - 1
    if num_params == 10**exponent:
        return f"1e{exponent}"
    return str(num_params)


def make_w2(num_params: int, num_clients: int, rounds: int = W2_ROUNDS) -> Workload:
    """Return the W2 (system cost) workload for P parameters and N clients."""
    return Workload(
        name=f"w2-p{_p_label(num_params)}-n{num_clients}",
        kind="system",
        task="synthetic",
        num_clients=num_clients,
        rounds=rounds,
        synthetic_params=num_params,
    )


W2: tuple[Workload, ...] = tuple(make_w2(p, n) for p in W2_PARAMS for n in W2_CLIENTS)

SCALE = Workload(
    name="scale",
    kind="scale",
    task="synthetic",
    num_clients=1000,
    rounds=3,
    synthetic_params=10_000,
)

LOAD_CLIENTS_PER_ROUND = 5


def make_load(num_clients: int) -> Workload:
    """Return the load workload: N idle clients, 5 of them in each of 3 rounds."""
    return Workload(
        name=f"load-n{num_clients}",
        kind="load",
        task="synthetic",
        num_clients=num_clients,
        rounds=3,
        synthetic_params=1000,
        clients_per_round=LOAD_CLIENTS_PER_ROUND,
    )


def make_soak(runs: int) -> Workload:
    """Return the soak: ``runs`` runs of 3 rounds back to back, 5 clients."""
    return Workload(
        name=f"soak-r{runs}",
        kind="soak",
        task="synthetic",
        num_clients=5,
        rounds=3,
        synthetic_params=1000,
        runs=runs,
    )


LOAD = make_load(10_000)
SOAK = make_soak(200)
STRAGGLERS = Workload(  # fednet.bench.stragglers: two of the six clients 5x slower
    name="stragglers",
    kind="stragglers",
    task="digits",
    num_clients=6,
    rounds=10,
    local_epochs=2,
    batch_size=16,
    learning_rate=0.1,
    alpha=0.5,
    seed=0,
)

WORKLOADS: dict[str, Workload] = {
    w.name: w for w in (W1, *W2, SCALE, LOAD, make_load(1000), SOAK, STRAGGLERS)
}


def with_strategy(w: Workload, strategy: str) -> Workload:
    """Return the workload run with another strategy, named ``<name>@<strategy>``.

    Raises:
        KeyError: if the strategy is not one of RunConfig's.
    """
    if strategy not in STRATEGIES:
        raise KeyError(f"unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
    base = w.name.split("@", 1)[0]
    return dataclasses.replace(w, name=f"{base}@{strategy}", strategy=strategy)


def get_workload(name: str) -> Workload:
    """Return a workload by name; ``w2-p<P>-n<N>``, ``load-n<N>``, ``soak-r<R>``.

    ``load`` and ``soak`` alone name the full sizes: ``load-n10000``, ``soak-r200``.
    A ``@<strategy>`` suffix runs the workload with that strategy
    (``w1@krum``); without one it runs FedAvg.

    Raises:
        KeyError: if the name is neither known nor one of those patterns.
    """
    if "@" in name:
        base, strategy = name.split("@", 1)
        return with_strategy(get_workload(base), strategy)
    if name in WORKLOADS:
        return WORKLOADS[name]
    if name in ("load", "soak"):
        return LOAD if name == "load" else SOAK
    if name.startswith("w2-p") and "-n" in name:
        p_text, n_text = name[4:].split("-n", 1)
        return make_w2(int(float(p_text)), int(n_text))
    if name.startswith("load-n") and name[6:].isdigit():
        return make_load(int(name[6:]))
    if name.startswith("soak-r") and name[6:].isdigit():
        return make_soak(int(name[6:]))
    raise KeyError(f"unknown workload {name!r}; known: {', '.join(WORKLOADS)}")
