"""Parameters, conditions and rules shared by both fednet stacks."""

from __future__ import annotations

from troposphere import Equals, Not, Parameter, Ref, Template

AMI_PARAMETERS = [
    "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
    "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64",
]
INSTANCE_TYPES = [
    "t3.micro",
    "t3.small",
    "t3.medium",
    "t3.large",
    "t3.xlarge",
    "m6i.large",
    "m6i.xlarge",
    "c6i.large",
    "c6i.xlarge",
]
CIDR_PATTERN = (
    r"^(([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])\.){3}"
    r"([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])/([0-9]|[1-2][0-9]|3[0-2])$"
)
IMAGE_PATTERN = r"^[a-z0-9]+([._/-][a-z0-9]+)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$"
TOKEN_NAME_PATTERN = r"^[A-Za-z0-9_.+=@-]+(/[A-Za-z0-9_.+=@-]+)*$"


def add_instance_parameters(t: Template) -> dict[str, Parameter]:
    """Add the parameters every stack has: sizes, AMI, access, images, tokens.

    Returns:
        The parameters by logical name.
    """
    p = [
        Parameter(
            "InstanceType",
            Type="String",
            Default="t3.small",
            AllowedValues=INSTANCE_TYPES,
            Description="EC2 instance type of every fednet instance",
        ),
        Parameter(
            "LatestAmiId",
            Type="AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>",
            Default=AMI_PARAMETERS[0],
            AllowedValues=AMI_PARAMETERS,
            Description="Public SSM parameter naming the Amazon Linux 2023 AMI",
        ),
        Parameter(
            "KeyName",
            Type="String",
            Default="",
            AllowedPattern=r"^$|^[ -~]{1,255}$",
            MaxLength=255,
            Description="Existing EC2 key pair for SSH; empty for none "
            "(Session Manager works without one)",
        ),
        Parameter(
            "SshCidr",
            Type="String",
            AllowedPattern=CIDR_PATTERN,
            MinLength=9,
            MaxLength=18,
            ConstraintDescription="an IPv4 CIDR such as 203.0.113.7/32",
            Description="IPv4 range allowed to SSH in (e.g. your address /32); "
            "0.0.0.0/0 is refused",
        ),
        Parameter(
            "HttpCidr",
            Type="String",
            Default="0.0.0.0/0",
            AllowedPattern=CIDR_PATTERN,
            MinLength=9,
            MaxLength=18,
            ConstraintDescription="an IPv4 CIDR such as 0.0.0.0/0",
            Description="IPv4 range allowed to open the dashboard and status pages",
        ),
        Parameter(
            "ServerImage",
            Type="String",
            Default="fednet/fl-server:latest",
            AllowedPattern=IMAGE_PATTERN,
            MaxLength=255,
            Description="Container image of the coordinator",
        ),
        Parameter(
            "ClientImage",
            Type="String",
            Default="fednet/fl-client:latest",
            AllowedPattern=IMAGE_PATTERN,
            MaxLength=255,
            Description="Container image of the clients",
        ),
        Parameter(
            "TokenStore",
            Type="String",
            Default="secretsmanager",
            AllowedValues=["secretsmanager", "ssm"],
            Description="Where the join and admin tokens are kept: Secrets Manager "
            "secrets or SSM SecureString parameters (named /<name>)",
        ),
        Parameter(
            "JoinTokenName",
            Type="String",
            Default="fednet/join-token",
            AllowedPattern=TOKEN_NAME_PATTERN,
            MaxLength=200,
            Description="Name of the secret (or SSM parameter without the leading "
            "/) holding the token clients present to join",
        ),
        Parameter(
            "AdminTokenName",
            Type="String",
            Default="fednet/admin-token",
            AllowedPattern=TOKEN_NAME_PATTERN,
            MaxLength=200,
            Description="Name of the secret (or SSM parameter without the leading "
            "/) holding the token that starts and stops runs",
        ),
    ]
    return {param.title: t.add_parameter(param) for param in p}


def add_client_data_parameters(t: Template) -> dict[str, Parameter]:
    """Add the parameters that choose each client's training data."""
    p = [
        Parameter(
            "ClientDataset",
            Type="String",
            Default="digits",
            AllowedValues=["digits", "breast_cancer", "synthetic", "csv"],
            Description="Built-in dataset of the clients, or csv for a file in S3",
        ),
        Parameter(
            "ClientPartition",
            Type="String",
            Default="1/1",
            AllowedPattern=r"^[1-9][0-9]{0,3}/[1-9][0-9]{0,3}$",
            Description="Slice i/n of the built-in dataset each client trains on",
        ),
        Parameter(
            "ClientDataBucket",
            Type="String",
            Default="",
            AllowedPattern=r"^$|^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
            Description="With ClientDataset=csv: bucket of the CSV file",
        ),
        Parameter(
            "ClientDataKey",
            Type="String",
            Default="",
            AllowedPattern=r"^$|^[A-Za-z0-9!_.*'()/-]{1,1024}\.csv$",
            Description="With ClientDataset=csv: key of the CSV file",
        ),
        Parameter(
            "ClientLabelColumn",
            Type="String",
            Default="label",
            AllowedPattern=r"^[A-Za-z0-9_.-]{1,128}$",
            Description="With ClientDataset=csv: name of the label column",
        ),
    ]
    return {param.title: t.add_parameter(param) for param in p}


def add_common_conditions_and_rules(t: Template) -> None:
    """Add the HasKeyName and UseCsvData conditions and the parameter rules."""
    t.add_condition("HasKeyName", Not(Equals(Ref("KeyName"), "")))
    t.add_condition("UseCsvData", Equals(Ref("ClientDataset"), "csv"))
    t.add_rule(
        "SshNotOpenToTheWorld",
        {
            "Assertions": [
                {
                    "Assert": Not(Equals(Ref("SshCidr"), "0.0.0.0/0")),
                    "AssertDescription": "SshCidr must not be 0.0.0.0/0",
                }
            ]
        },
    )
    t.add_rule(
        "CsvDataNamed",
        {
            "RuleCondition": Equals(Ref("ClientDataset"), "csv"),
            "Assertions": [
                {
                    "Assert": Not(Equals(Ref("ClientDataBucket"), "")),
                    "AssertDescription": "ClientDataset=csv needs ClientDataBucket",
                },
                {
                    "Assert": Not(Equals(Ref("ClientDataKey"), "")),
                    "AssertDescription": "ClientDataset=csv needs ClientDataKey",
                },
            ],
        },
    )
