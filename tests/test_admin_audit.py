"""``fednet audit`` on a state dir: the newest entries, oldest of them first."""

from __future__ import annotations

from pathlib import Path

import pytest

from fednet import cli
from fednet.server.audit import AuditLog
from fednet.server.store import Store


def _audit(*argv: str) -> int:
    args = cli.build_parser().parse_args(["audit", *argv])
    return int(args.func(args))


def test_audit_prints_the_newest_entries_oldest_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each line names when, who, what, on what, the outcome and from where."""
    store = Store(tmp_path)
    log = AuditLog(store, clock=iter([0.0, 60.0, 120.0]).__next__)
    log.record("admin", "run.launch", target="run 1", remote="198.18.0.2")
    log.record("anonymous", "client.refused", outcome="refused", detail="no token")
    log.record("admin", "run.stop", target="run 1", remote="198.18.0.2")
    log.write_pending()
    store.close()
    assert _audit("--state-dir", str(tmp_path), "--limit", "2") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "1970-01-01T00:01:00Z  anonymous  client.refused  -  refused  -  no token",
        "1970-01-01T00:02:00Z  admin  run.stop  run 1  ok  198.18.0.2",
    ]


def test_audit_of_a_folder_without_state_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mistyped --state-dir is an error, and no empty state is created there."""
    assert _audit("--state-dir", str(tmp_path / "nothing")) == 2
    assert "no state in" in capsys.readouterr().err
    assert not (tmp_path / "nothing").exists()
