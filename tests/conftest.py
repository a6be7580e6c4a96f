"""Fixtures shared by the end-to-end and browser tests: real processes, cleaned up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Cluster


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the item, so fixtures know if the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    """Track a test's processes; print their logs if it failed; kill them all."""
    tracked = Cluster(tmp_path)
    try:
        yield tracked
    finally:
        tracked.stop()
        failed = any(
            getattr(getattr(request.node, f"report_{when}", None), "failed", False)
            for when in ("setup", "call")
        )
        if failed:
            print(f"\n===== process logs of {request.node.name} =====")
            print(tracked.logs())
