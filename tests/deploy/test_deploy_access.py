"""What each instance role may effectively do with the tokens, managed policy included.

A small IAM evaluator: an explicit Deny wins, then any Allow, else implicit
deny. The roles' inline policies are read from the templates (both branches
of every Fn::If, the widest case); AmazonSSMManagedInstanceCore is modelled by
its statements that touch parameters (AWS managed policy, version 3 on).
"""

from __future__ import annotations

import copy
import re
from fnmatch import fnmatchcase
from typing import Any

import pytest

STACKS = ("simple", "complex")
VALUES = {
    "AWS::Partition": "aws",
    "AWS::Region": "eu-west-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "fednet",
    "JoinTokenName": "fednet/join-token",
    "AdminTokenName": "fednet/admin-token",
    "ClientDataBucket": "data-bucket",
    "ClientDataKey": "site.csv",
    "StateBucket.Arn": "arn:aws:s3:::state-bucket",
}
SSM_CORE = [
    {
        "Effect": "Allow",
        "Action": [
            "ssm:DescribeAssociation",
            "ssm:GetDeployablePatchSnapshotForInstance",
            "ssm:GetDocument",
            "ssm:DescribeDocument",
            "ssm:GetManifest",
            "ssm:GetParameter",
            "ssm:GetParameters",
            "ssm:ListAssociations",
            "ssm:ListInstanceAssociations",
            "ssm:PutInventory",
            "ssm:PutComplianceItems",
            "ssm:PutConfigurePackageResult",
            "ssm:UpdateAssociationStatus",
            "ssm:UpdateInstanceAssociationStatus",
            "ssm:UpdateInstanceInformation",
        ],
        "Resource": "*",
    },
]
ARN = "arn:aws:{}:eu-west-1:123456789012:{}"
READS = {
    "ssm": [
        ("ssm:GetParameter", ARN.format("ssm", "parameter/{}")),
        ("ssm:GetParameters", ARN.format("ssm", "parameter/{}")),
    ],
    "secretsmanager": [
        (
            "secretsmanager:GetSecretValue",
            ARN.format("secretsmanager", "secret:{}-AbC123"),
        ),
    ],
}


def _resolve(node: Any) -> list[Any]:
    """Return the concrete values of a template node (each Fn::If branch)."""
    if isinstance(node, dict) and "Fn::Sub" in node:
        text = re.sub(r"\$\{([\w:.]+)\}", lambda m: VALUES[m.group(1)], node["Fn::Sub"])
        return [text]
    if isinstance(node, dict) and "Fn::If" in node:
        return [v for branch in node["Fn::If"][1:] for v in _resolve(branch)]
    if isinstance(node, dict) and node.get("Ref") == "AWS::NoValue":
        return []
    if isinstance(node, dict) and "Fn::GetAtt" in node:
        return ["arn:aws:s3:::state-bucket"]
    if isinstance(node, dict):
        resolved = {}
        for key, value in node.items():
            values = _resolve(value)
            resolved[key] = values[0] if values else None
        return [resolved]
    if isinstance(node, list):
        return [[v for item in node for v in _resolve(item)]]
    return [node]


def _statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """Return the role's inline statements, resolved, plus the managed policy's."""
    (policy,) = template["Resources"][role]["Properties"]["Policies"]
    (resolved,) = _resolve(policy["PolicyDocument"]["Statement"])
    return [*resolved, *SSM_CORE]


def _listed(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]


def _matches(statement: dict[str, Any], action: str, resource: str) -> bool:
    actions = [a.lower() for a in _listed(statement["Action"])]
    return any(fnmatchcase(action.lower(), a) for a in actions) and any(
        fnmatchcase(resource, r) for r in _listed(statement["Resource"])
    )


def allowed(statements: list[dict[str, Any]], action: str, resource: str) -> bool:
    """Decide as IAM does (conditions aside): Deny beats Allow beats nothing."""
    hits = [s["Effect"] for s in statements if _matches(s, action, resource)]
    return "Deny" not in hits and "Allow" in hits


def _can_read(statements: list[dict[str, Any]], token: str) -> dict[str, bool]:
    """Return, per token store, whether every read of ``token`` is allowed."""
    return {
        store: all(allowed(statements, a, r.format(token)) for a, r in reads)
        for store, reads in READS.items()
    }


@pytest.mark.parametrize("stack", STACKS)
def test_the_client_role_cannot_read_the_admin_token_from_either_store(
    templates: dict[str, dict[str, Any]], stack: str
) -> None:
    """The deny beats the managed policy's ssm:GetParameter on every parameter."""
    client = _statements(templates[stack], "ClientRole")

    for action, resource in [r for reads in READS.values() for r in reads]:
        assert not allowed(client, action, resource.format("fednet/admin-token"))
    assert _can_read(client, "fednet/join-token") == {
        "ssm": True,
        "secretsmanager": True,
    }


@pytest.mark.parametrize("stack", STACKS)
def test_the_coordinator_role_reads_both_tokens(
    templates: dict[str, dict[str, Any]], stack: str
) -> None:
    """The server role keeps its access to both tokens in both stores."""
    server = _statements(templates[stack], "ServerRole")

    for token in ("fednet/join-token", "fednet/admin-token"):
        assert _can_read(server, token) == {"ssm": True, "secretsmanager": True}


def test_without_the_deny_the_managed_policy_leaks_the_admin_token(
    templates: dict[str, dict[str, Any]],
) -> None:
    """The evaluator sees the leak the deny closes (issue 15, item 4)."""
    template = copy.deepcopy(templates["simple"])
    (policy,) = template["Resources"]["ClientRole"]["Properties"]["Policies"]
    document = policy["PolicyDocument"]
    document["Statement"] = [
        s for s in document["Statement"] if s.get("Effect") != "Deny"
    ]

    client = _statements(template, "ClientRole")

    assert _can_read(client, "fednet/admin-token")["ssm"] is True


@pytest.mark.parametrize("stack", STACKS)
def test_ecr_pull_rights_exist_only_when_asked_for(
    templates: dict[str, dict[str, Any]], stack: str
) -> None:
    """Both roles may pull this account's ECR images under UseEcr, nothing else."""
    template = templates[stack]

    assert template["Conditions"]["UseEcr"] == {
        "Fn::Equals": [{"Ref": "PullFromEcr"}, "true"]
    }
    for role in ("ServerRole", "ClientRole"):
        (policy,) = template["Resources"][role]["Properties"]["Policies"]
        ecr = [
            s["Fn::If"]
            for s in policy["PolicyDocument"]["Statement"]
            if "Fn::If" in s and "ecr:" in repr(s)
        ]
        assert [(cond, no) for cond, _, no in ecr] == [
            ("UseEcr", {"Ref": "AWS::NoValue"})
        ] * 2, role
        pull = next(yes for _, yes, _ in ecr if yes["Sid"] == "PullImagesFromEcr")
        assert pull["Resource"] == [
            {
                "Fn::Sub": "arn:${AWS::Partition}:ecr:*:${AWS::AccountId}"
                ":repository/*"
            }
        ]


def test_only_the_simple_coordinator_may_write_the_ca_certificate(
    templates: dict[str, dict[str, Any]],
) -> None:
    """The coordinator publishes its CA certificate; the client only reads it."""
    simple = templates["simple"]
    server = _statements(simple, "ServerRole")
    client = _statements(simple, "ClientRole")
    name = simple["Resources"]["CaCertificateParameter"]["Properties"]["Name"]
    (parameter,) = _resolve(name)
    ca = ARN.format("ssm", "parameter" + parameter)
    join = ARN.format("ssm", "parameter/fednet/join-token")

    assert parameter == "/fednet/fednet/ca-cert"
    assert allowed(server, "ssm:PutParameter", ca)
    assert not allowed(server, "ssm:PutParameter", join)
    assert not allowed(client, "ssm:PutParameter", ca)
    assert allowed(client, "ssm:GetParameter", ca)
    complex_server = _statements(templates["complex"], "ServerRole")
    assert not allowed(complex_server, "ssm:PutParameter", ca)
