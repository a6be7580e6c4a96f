"""Both CloudFormation templates: golden files, cfn-lint, shared production settings."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cfnlint.api import lint
from cfnlint.config import ManualArgs

from tests.deploy.conftest import instance_specs

DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy"
STACKS = ("simple", "complex")
LINT_REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2"]
SSM_CORE = "arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"


def _text(stack: str) -> str:
    return (DEPLOY_DIR / f"cloud_formation_{stack}.yaml").read_text(encoding="utf-8")


def test_regenerated_templates_match_committed_files_byte_for_byte(
    gen_templates: ModuleType,
) -> None:
    """Running the generator reproduces both committed YAML files exactly."""
    rendered = gen_templates.render_templates()

    assert set(rendered) == {f"cloud_formation_{s}.yaml" for s in STACKS}
    for name, text in rendered.items():
        assert (DEPLOY_DIR / name).read_bytes() == text.encode(
            "utf-8"
        ), f"{name} is stale: run python deploy/gen_templates.py"


def test_main_writes_both_templates_into_the_given_directory(
    gen_templates: ModuleType, tmp_path: Path
) -> None:
    """main() writes both files, identical to the committed ones."""
    written = gen_templates.main(tmp_path)

    assert sorted(p.name for p in written) == sorted(
        f"cloud_formation_{s}.yaml" for s in STACKS
    )
    for path in written:
        assert path.read_bytes() == (DEPLOY_DIR / path.name).read_bytes()


@pytest.mark.parametrize("stack", STACKS)
def test_cfn_lint_reports_no_error_and_no_warning(stack: str) -> None:
    """cfn-lint finds nothing (errors and warnings) in several regions."""
    matches = lint(_text(stack), config=ManualArgs(regions=LINT_REGIONS))

    assert [str(m) for m in matches] == []


def test_cfn_lint_reports_errors_and_warnings_of_a_broken_template() -> None:
    """The lint call above really reports both errors and warnings."""
    broken = (
        _text("simple")
        .replace("!Ref 'LatestAmiId'", "!Ref 'NoSuchParameter'", 1)
        .replace(
            "Parameters:\n",
            "Parameters:\n  Unused:\n    Type: String\n    Default: a\n"
            "    AllowedValues: [a]\n    Description: unused\n",
            1,
        )
    )

    levels = {
        m.rule.id[0] for m in lint(broken, config=ManualArgs(regions=["us-east-1"]))
    }

    assert levels == {"E", "W"}


@pytest.mark.parametrize("stack", STACKS)
def test_every_parameter_is_constrained_and_described(
    templates: dict[str, dict[str, Any]], stack: str
) -> None:
    """Each parameter has allowed values, a pattern or a range, and a description."""
    for name, param in templates[stack]["Parameters"].items():
        constrained = (
            "AllowedValues" in param
            or "AllowedPattern" in param
            or ("MinValue" in param and "MaxValue" in param)
        )
        assert constrained, name
        assert param.get("Description"), name


@pytest.mark.parametrize("stack", STACKS)
def test_ami_comes_from_the_public_ssm_parameter(
    templates: dict[str, dict[str, Any]], stack: str
) -> None:
    """Images come from the SSM public parameter, never from a region map."""
    template = templates[stack]
    ami = template["Parameters"]["LatestAmiId"]

    assert ami["Type"] == "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"
    assert ami["Default"].startswith("/aws/service/ami-amazon-linux-latest/al2023-")
    assert "Mappings" not in template
    for name, spec in instance_specs(template).items():
        assert spec["ImageId"] == {"Ref": "LatestAmiId"}, name


@pytest.mark.parametrize("stack", STACKS)
def test_instances_require_imdsv2_with_hop_limit_one(
    templates: dict[str, dict[str, Any]], stack: str
) -> None:
    """IMDSv2 only; hop limit 1, so containers cannot reach the role's credentials."""
    specs = instance_specs(templates[stack])

    assert len(specs) == 2
    for name, spec in specs.items():
        options = spec["MetadataOptions"]
        assert options["HttpTokens"] == "required", name
        assert options["HttpPutResponseHopLimit"] == 1, name
        assert options["HttpEndpoint"] == "enabled", name


@pytest.mark.parametrize("stack", STACKS)
def test_root_volumes_are_encrypted_gp3(
    templates: dict[str, dict[str, Any]], stack: str
) -> None:
    """Every instance boots from an encrypted gp3 root volume."""
    for name, spec in instance_specs(templates[stack]).items():
        (mapping,) = spec["BlockDeviceMappings"]
        assert mapping["DeviceName"] == "/dev/xvda", name
        assert mapping["Ebs"]["VolumeType"] == "gp3", name
        assert mapping["Ebs"]["Encrypted"] is True, name


@pytest.mark.parametrize("stack", STACKS)
def test_instance_profiles_grant_session_manager(
    templates: dict[str, dict[str, Any]], cfn: Any, stack: str
) -> None:
    """Each instance has a profile whose role carries the SSM core managed policy."""
    template = templates[stack]
    roles = cfn.resources_of(template, "AWS::IAM::Role")
    profiles = cfn.resources_of(template, "AWS::IAM::InstanceProfile")

    for name, spec in instance_specs(template).items():
        ref = spec["IamInstanceProfile"]
        profile = ref["Ref"] if "Ref" in ref else ref["Arn"]["Fn::GetAtt"][0]
        (role_ref,) = profiles[profile]["Properties"]["Roles"]
        role = roles[role_ref["Ref"]]["Properties"]
        assert {"Fn::Sub": SSM_CORE} in role["ManagedPolicyArns"], name


@pytest.mark.parametrize("stack", STACKS)
def test_token_parameters_name_secrets_and_hold_none(
    templates: dict[str, dict[str, Any]], stack: str
) -> None:
    """Tokens are looked up by name; no parameter or dynamic reference carries one."""
    params = templates[stack]["Parameters"]

    assert params["TokenStore"]["AllowedValues"] == ["secretsmanager", "ssm"]
    assert params["JoinTokenName"]["Default"] == "fednet/join-token"
    assert params["AdminTokenName"]["Default"] == "fednet/admin-token"
    assert not [n for n, p in params.items() if p.get("NoEcho")]
    assert "{{resolve:" not in _text(stack)


@pytest.mark.parametrize("stack", STACKS)
def test_instance_roles_read_only_their_own_tokens(
    templates: dict[str, dict[str, Any]], cfn: Any, stack: str
) -> None:
    """The coordinator reads both tokens, clients only the join token."""
    roles = cfn.resources_of(templates[stack], "AWS::IAM::Role")

    def token_resources(role: str) -> str:
        (policy,) = roles[role]["Properties"]["Policies"]
        statements = policy["PolicyDocument"]["Statement"]
        (tokens,) = [s for s in statements if s.get("Sid") == "ReadTokens"]
        assert tokens["Action"] == [
            "ssm:GetParameter",
            "secretsmanager:GetSecretValue",
        ]
        return repr(tokens["Resource"])

    assert "AdminTokenName" in token_resources("ServerRole")
    assert "JoinTokenName" in token_resources("ServerRole")
    assert "AdminTokenName" not in token_resources("ClientRole")
    assert "JoinTokenName" in token_resources("ClientRole")


def test_simple_security_group_opens_http_and_the_app_port_between_peers(
    simple: dict[str, Any], cfn: Any
) -> None:
    """HTTP(S) from HttpCidr, port 5000 only within the group (SSH: see above)."""
    sg = simple["Resources"]["InstanceSecurityGroup"]["Properties"]
    rules = sg["SecurityGroupIngress"]

    assert [(r["FromPort"], r["CidrIp"]) for r in rules] == [
        (80, {"Ref": "HttpCidr"}),
        (443, {"Ref": "HttpCidr"}),
    ]
    peer = simple["Resources"]["CoordinatorIngress"]
    own = {"Fn::GetAtt": ["InstanceSecurityGroup", "GroupId"]}
    assert peer["Properties"]["FromPort"] == 5000
    assert peer["Properties"]["SourceSecurityGroupId"] == own
    assert peer["Properties"]["GroupId"] == own


def test_simple_client_joins_the_server_by_its_private_address(
    simple: dict[str, Any], cfn: Any
) -> None:
    """The client's user data points at wss://<server private IP>:5000/ws."""
    body = cfn.user_data_bodies(simple)["ClientInstance"]

    assert "FEDNET_SERVER=wss://${ServerInstance.PrivateIp}:5000/ws\n" in body
    assert "FEDNET_CA_FILE=/trust/ca.crt\n" in body


def test_simple_outputs_give_the_dashboard_url(simple: dict[str, Any]) -> None:
    """The dashboard URL output points at the server's public name."""
    outputs = simple["Outputs"]

    assert outputs["DashboardUrl"]["Value"] == {
        "Fn::Sub": "https://${ServerInstance.PublicDnsName}/"
    }
    assert "ClientStatusUrl" in outputs


def test_simple_instances_wait_for_a_success_signal(simple: dict[str, Any]) -> None:
    """Both instances carry a CreationPolicy waiting for one signal."""
    for name in ("ServerInstance", "ClientInstance"):
        policy = simple["Resources"][name]["CreationPolicy"]["ResourceSignal"]
        assert policy["Count"] == 1, name
