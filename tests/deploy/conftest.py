"""Fixtures of the deploy tests: the generator, parsed templates, user data."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cfnlint.decode import decode_str

DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy"
STACK_FILES = {
    "simple": "cloud_formation_simple.yaml",
    "complex": "cloud_formation_complex.yaml",
}


@pytest.fixture(scope="session")
def gen_templates() -> ModuleType:
    """Import deploy/gen_templates.py the way `python deploy/gen_templates.py` does."""
    if str(DEPLOY_DIR) not in sys.path:
        sys.path.insert(0, str(DEPLOY_DIR))
    import gen_templates as module

    return module


def _load_template(stack: str) -> dict[str, Any]:
    """Parse a committed template (short-form tags included)."""
    text = (DEPLOY_DIR / STACK_FILES[stack]).read_text(encoding="utf-8")
    template, errors = decode_str(text)
    assert not errors, errors
    assert template is not None
    return template


@pytest.fixture(scope="session")
def simple() -> dict[str, Any]:
    """The committed simple template, parsed."""
    return _load_template("simple")


@pytest.fixture(scope="session")
def complex_() -> dict[str, Any]:
    """The committed complex template, parsed."""
    return _load_template("complex")


def _resources_of(template: dict[str, Any], kind: str) -> dict[str, Any]:
    """Return the resources of one CloudFormation type, by logical ID."""
    return {
        name: res for name, res in template["Resources"].items() if res["Type"] == kind
    }


def _user_data_bodies(template: dict[str, Any]) -> dict[str, str]:
    """Return each resource's user data Fn::Sub body, by logical ID."""
    found = {}
    for name, res in template["Resources"].items():
        props = res.get("Properties", {})
        data = props.get("UserData") or props.get("LaunchTemplateData", {}).get(
            "UserData"
        )
        if data is not None:
            body = data["Fn::Base64"]["Fn::Sub"]
            assert isinstance(body, str), "user data is a single Fn::Sub string"
            found[name] = str(body)
    return found


def _render_sub(body: str) -> str:
    """Render an Fn::Sub body as CloudFormation would, with placeholder values."""
    rendered = re.sub(
        r"\$\{([A-Za-z0-9:.]+)\}",
        lambda m: "placeholder-" + re.sub(r"\W+", "-", m.group(1)).lower(),
        body,
    )
    return rendered.replace("${!", "${")


def _embedded_scripts(script: str) -> dict[str, str]:
    """Return the scripts a user-data script writes under /usr/local/bin."""
    pattern = r"cat >(/usr/local/bin/\S+) <<'EOF'\n(.*?)\nEOF\n"
    return {m.group(1): m.group(2) + "\n" for m in re.finditer(pattern, script, re.S)}


def instance_specs(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return the properties that launch instances (instances, launch templates)."""
    specs = {}
    for name, res in template["Resources"].items():
        if res["Type"] == "AWS::EC2::Instance":
            specs[name] = res["Properties"]
        elif res["Type"] == "AWS::EC2::LaunchTemplate":
            specs[name] = res["Properties"]["LaunchTemplateData"]
    return specs


@pytest.fixture(scope="session")
def cfn() -> Any:
    """Helpers over parsed templates, as attributes."""

    class Helpers:
        resources_of = staticmethod(_resources_of)
        user_data_bodies = staticmethod(_user_data_bodies)
        render_sub = staticmethod(_render_sub)
        embedded_scripts = staticmethod(_embedded_scripts)
        load_template = staticmethod(_load_template)
        instance_specs = staticmethod(instance_specs)

    return Helpers


@pytest.fixture(scope="session")
def templates() -> dict[str, dict[str, Any]]:
    """Both committed templates, parsed, by stack name."""
    return {stack: _load_template(stack) for stack in STACK_FILES}
