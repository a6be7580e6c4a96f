"""checkov (CloudFormation framework) passes; every skip is explained and needed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy"
STACKS = ("simple", "complex")


def _checkov(*files: Path) -> list[dict[str, Any]]:
    """Run checkov offline on ``files`` and return its JSON reports."""
    exe = Path(sys.executable).with_name("checkov")
    command = str(exe) if exe.exists() else shutil.which("checkov")
    assert command, "install checkov (a test dependency)"
    args = [command, "--framework", "cloudformation", "--skip-download", "-o", "json"]
    for path in files:
        args += ["-f", str(path)]
    result = subprocess.run(
        args, capture_output=True, text=True, check=False, timeout=300
    )
    assert result.stdout, result.stderr
    reports = json.loads(result.stdout)
    return reports if isinstance(reports, list) else [reports]


def _resource_name(check: dict[str, Any]) -> str:
    return str(check["resource"]).rsplit(".", 1)[-1]


@pytest.fixture(scope="module")
def committed_report() -> list[dict[str, Any]]:
    """checkov's findings on the committed templates."""
    return _checkov(*(DEPLOY_DIR / f"cloud_formation_{s}.yaml" for s in STACKS))


def _skips(templates: dict[str, dict[str, Any]]) -> set[tuple[str, str]]:
    """Return (resource, check id) for every skip declared in resource Metadata."""
    skips = set()
    for template in templates.values():
        for name, res in template["Resources"].items():
            for skip in res.get("Metadata", {}).get("checkov", {}).get("skip", []):
                skips.add((name, skip["id"]))
    return skips


def test_checkov_passes_on_both_templates(
    committed_report: list[dict[str, Any]],
) -> None:
    """No failed check; many passed."""
    failed = [
        (_resource_name(c), c["check_id"])
        for report in committed_report
        for c in report["results"]["failed_checks"]
    ]
    passed = sum(r["summary"]["passed"] for r in committed_report)

    assert failed == []
    assert passed >= 50


def test_every_skip_lives_in_metadata_with_a_reason(
    templates: dict[str, dict[str, Any]],
) -> None:
    """Each checkov skip names a check and explains itself."""
    for template in templates.values():
        for name, res in template["Resources"].items():
            for skip in res.get("Metadata", {}).get("checkov", {}).get("skip", []):
                assert skip["id"].startswith("CKV"), name
                assert len(skip["comment"]) >= 20, (name, skip)


def test_every_skip_silences_a_real_finding(
    templates: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """Without the Metadata, checkov fails exactly the skipped checks."""
    files = []
    for stack, template in templates.items():
        stripped = json.loads(json.dumps(template))
        for res in stripped["Resources"].values():
            res.pop("Metadata", None)
        path = tmp_path / f"{stack}.json"
        path.write_text(json.dumps(stripped), encoding="utf-8")
        files.append(path)

    reports = _checkov(*files)

    failed = {
        (_resource_name(c), c["check_id"])
        for report in reports
        for c in report["results"]["failed_checks"]
    }
    assert failed == _skips(templates)
