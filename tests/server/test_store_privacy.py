"""Per-round epsilon and a run's privacy figures in the store, across restarts."""

from __future__ import annotations

import json
from pathlib import Path

from fednet.config import RunConfig
from fednet.records import RoundRecord
from fednet.server.store import Store
from fednet.typing import ClientId
from fednet.views import PrivacyView, RunView

DP = RunConfig.from_dict(
    {"dp": "central", "dp_target_epsilon": 8.0, "dp_delta": 1e-6}
).to_dict()


def _record(server_round: int, epsilon: float | None) -> RoundRecord:
    return RoundRecord(
        server_round=server_round, clients=(ClientId("a"),), num_examples=10,
        fit_metrics={}, federated_loss=0.5, federated_accuracy=0.5,
        evaluated_clients=(), test_loss=None, test_accuracy=None, dropped=(),
        rejected={}, client_metrics={}, epsilon=epsilon,
    )


def test_round_epsilon_and_run_privacy_survive_a_restart(tmp_path: Path) -> None:
    """A reopened store shows the same per-round epsilon and privacy figures."""
    store = Store(tmp_path)
    run_id = store.create_run(DP, 0.0)
    for server_round, spent in ((1, 2.5), (2, 3.75)):
        store.record_round(run_id, _record(server_round, spent), 0.1, 1.0)
    store.close()

    again = Store(tmp_path)
    run = again.get_run(run_id)
    assert run is not None and run.rounds is not None
    assert [r.epsilon for r in run.rounds] == [2.5, 3.75]
    expected = PrivacyView(False, None, 0, 3.75, 1e-6, 8.0)
    assert run.privacy == expected
    bare = again.get_run(run_id, with_rounds=False)
    assert bare is not None and bare.privacy == expected
    assert again.list_runs()[0].privacy == expected
    shown = run.to_dict()
    assert shown["privacy"] == {
        "secure_aggregation": False, "threshold": None, "dropouts_recovered": 0,
        "epsilon": 3.75, "delta": 1e-6, "budget": 8.0,
    }
    assert shown["rounds"][1]["epsilon"] == 3.75
    assert RunView.from_dict(json.loads(json.dumps(shown))) == run
    again.close()


def test_a_database_of_an_earlier_release_opens(tmp_path: Path) -> None:
    """Rounds stored before dp (no epsilon in their detail) read back as None."""
    store = Store(tmp_path)
    run_id = store.create_run(RunConfig().to_dict(), 0.0)
    store.record_round(run_id, _record(1, None), 0.1, 1.0)
    # What an earlier release wrote: no epsilon key, no dp fields in the config.
    old_config = {k: v for k, v in RunConfig().to_dict().items()
                  if not k.startswith("dp")}
    store.write("UPDATE rounds SET detail=? WHERE run_id=?", (json.dumps(
        {"fit_metrics": {}, "evaluated_clients": [], "dropped": [], "rejected": {}}
    ), run_id))
    store.write("UPDATE runs SET config=? WHERE id=?", (json.dumps(old_config), run_id))
    store.close()

    again = Store(tmp_path)
    run = again.get_run(run_id)
    assert run is not None and run.rounds is not None
    assert run.rounds[0].epsilon is None
    assert run.privacy == PrivacyView(False, None, 0, None, None, None)
    again.close()


def test_a_dp_run_without_rounds_has_spent_nothing(tmp_path: Path) -> None:
    """Before its first round (or stopped by the budget at once) epsilon is 0."""
    store = Store(tmp_path)
    run_id = store.create_run(DP, 0.0)
    run = store.get_run(run_id)
    assert run is not None and run.privacy is not None
    assert run.privacy.epsilon == 0.0 and run.privacy.budget == 8.0
    store.close()
