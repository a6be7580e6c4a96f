"""Parameters that reach shells and security groups: SSH, data keys, images."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.deploy.conftest import instance_specs

STACKS = ("simple", "complex")


@pytest.mark.parametrize("stack", STACKS)
def test_key_pair_is_optional_through_a_condition(
    templates: dict[str, dict[str, Any]], stack: str
) -> None:
    """KeyName defaults to empty and is dropped when empty."""
    template = templates[stack]

    assert template["Parameters"]["KeyName"]["Default"] == ""
    assert template["Conditions"]["HasKeyName"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "KeyName"}, ""]}]
    }
    for name, spec in instance_specs(template).items():
        assert spec["KeyName"] == {
            "Fn::If": ["HasKeyName", {"Ref": "KeyName"}, {"Ref": "AWS::NoValue"}]
        }, name


@pytest.mark.parametrize("stack", STACKS)
def test_ssh_cidr_refuses_every_spelling_of_the_whole_internet(
    templates: dict[str, dict[str, Any]], stack: str
) -> None:
    """SshCidr is empty or a /16-/32 CIDR; a rule asks for it with KeyName."""
    template = templates[stack]
    param = template["Parameters"]["SshCidr"]
    pattern = re.compile(param["AllowedPattern"])

    assert param["Default"] == ""
    for good in ("", "203.0.113.7/32", "10.1.0.0/16"):
        assert pattern.match(good), good
    for bad in ("0.0.0.0/0", "1.2.3.4/0", "0.0.0.0/1", "10.0.0.0/8", "1.2.3.4/15"):
        assert not pattern.match(bad), bad
    for bad in ("203.0.113.7", "300.1.1.1/32", "1.2.3.4/33", "any"):
        assert not pattern.match(bad), bad
    rule = template["Rules"]["SshCidrWithKeyName"]
    assert rule["RuleCondition"] == template["Conditions"]["HasKeyName"]
    assert rule["Assertions"][0]["Assert"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "SshCidr"}, ""]}]
    }


@pytest.mark.parametrize("stack", STACKS)
def test_the_ssh_rule_exists_only_with_a_key_pair(
    templates: dict[str, dict[str, Any]], cfn: Any, stack: str
) -> None:
    """Port 22 opens in one conditional rule (HasSsh: KeyName and SshCidr given)."""
    template = templates[stack]
    ssh = template["Resources"]["SshFromSshCidr"]
    inline = [
        rule
        for sg in cfn.resources_of(template, "AWS::EC2::SecurityGroup").values()
        for rule in sg["Properties"].get("SecurityGroupIngress", [])
    ]
    opened = [
        name
        for name, r in cfn.resources_of(
            template, "AWS::EC2::SecurityGroupIngress"
        ).items()
        if r["Properties"]["FromPort"] <= 22 <= r["Properties"]["ToPort"]
    ]

    assert opened == ["SshFromSshCidr"]
    assert not [r for r in inline if r["FromPort"] <= 22 <= r["ToPort"]]
    assert ssh["Condition"] == "HasSsh"
    assert ssh["Properties"]["CidrIp"] == {"Ref": "SshCidr"}
    assert template["Conditions"]["HasSsh"] == {
        "Fn::And": [
            {"Condition": "HasKeyName"},
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "SshCidr"}, ""]}]},
        ]
    }


@pytest.mark.parametrize("stack", STACKS)
def test_client_data_key_refuses_what_would_break_the_user_data(
    templates: dict[str, dict[str, Any]], stack: str
) -> None:
    """No quote, parenthesis, wildcard or space in ClientDataKey."""
    param = templates[stack]["Parameters"]["ClientDataKey"]
    pattern = re.compile(param["AllowedPattern"])

    for good in ("", "data.csv", "site-1/data_v2!.final.csv"):
        assert pattern.match(good), good
    for bad in ("it's.csv", "a(1).csv", "*.csv", "a b.csv", "x.csv'; rm -rf /'.csv"):
        assert not pattern.match(bad), bad


@pytest.mark.parametrize("stack", STACKS)
def test_image_parameters_are_required_and_accept_digests_and_registry_ports(
    templates: dict[str, dict[str, Any]], stack: str
) -> None:
    """No default image (no registry we do not control); references validate."""
    params = templates[stack]["Parameters"]
    digest = "@sha256:" + "0123456789abcdef" * 4

    for name in ("ServerImage", "ClientImage"):
        assert "Default" not in params[name], name
    pattern = re.compile(params["ServerImage"]["AllowedPattern"])
    for good in (
        "myuser/fl-server:v1.2",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/fl-server:1",
        "registry.example.org:5000/team/fl-server:1.0",
        "myuser/fl-server" + digest,
        "myuser/fl-server:v1" + digest,
    ):
        assert pattern.match(good), good
    for bad in (
        "fl server; rm -rf /",
        "myuser/fl-server@sha256:short",
        "a'b",
        "img:%i",
        "$(id)",
    ):
        assert not pattern.match(bad), bad
