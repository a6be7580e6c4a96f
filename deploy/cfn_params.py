"""Parameters, conditions and rules shared by both fednet stacks."""

from __future__ import annotations

from troposphere import And, Condition, Equals, Not, Parameter, Ref, Template

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
_ADDRESS = (
    r"(([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])\.){3}"
    r"([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])"
)
CIDR_PATTERN = "^" + _ADDRESS + r"/([0-9]|[1-2][0-9]|3[0-2])$"
# SSH: empty (no SSH rule) or a range of at most 65,536 addresses (/16-/32),
# so no spelling of "the whole internet" (1.2.3.4/0, 0.0.0.0/1, ...) passes.
SSH_CIDR_PATTERN = "^$|^" + _ADDRESS + r"/(1[6-9]|2[0-9]|3[0-2])$"
# [registry[:port]/]path[:tag][@sha256:digest]: nothing a shell or a systemd
# unit would interpret (no quotes, spaces, $ or %).
IMAGE_PATTERN = (
    r"^([a-z0-9]+([.-][a-z0-9]+)*(:[0-9]{1,5})?/)?"
    r"[a-z0-9]+([._/-][a-z0-9]+)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$"
)
# S3 keys limited to characters safe inside single quotes and an IAM ARN
# (no quote, no parenthesis, no * wildcard).
CSV_KEY_PATTERN = r"^$|^[A-Za-z0-9!_./-]{1,1020}\.csv$"
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
            Default="",
            AllowedPattern=SSH_CIDR_PATTERN,
            MaxLength=18,
            ConstraintDescription="empty, or an IPv4 CIDR of /16 to /32 such as "
            "203.0.113.7/32",
            Description="With KeyName: IPv4 range allowed to SSH in (e.g. your "
            "address /32, at most a /16); no SSH rule without a key pair",
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
            AllowedPattern=IMAGE_PATTERN,
            MaxLength=255,
            ConstraintDescription="an image reference such as "
            "registry.example.org:5000/fl-server:1.0 or fl-server@sha256:<64 hex>",
            Description="Container image of the coordinator (a registry you "
            "control; pin it by @sha256 digest); ECR images are pulled with the "
            "instance role",
        ),
        Parameter(
            "ClientImage",
            Type="String",
            AllowedPattern=IMAGE_PATTERN,
            MaxLength=255,
            ConstraintDescription="an image reference such as "
            "registry.example.org:5000/fl-client:1.0 or fl-client@sha256:<64 hex>",
            Description="Container image of the clients (a registry you "
            "control; pin it by @sha256 digest); ECR images are pulled with the "
            "instance role",
        ),
        Parameter(
            "PullFromEcr",
            Type="String",
            Default="false",
            AllowedValues=["false", "true"],
            Description="true: the instance roles may pull this account's ECR "
            "images (the instances log in to ECR before pulling from it)",
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


def add_client_data_parameters(
    t: Template, *, partition: bool
) -> dict[str, Parameter]:
    """Add the parameters that choose each client's training data.

    Args:
        t: The template.
        partition: Add ``ClientPartition``, the slice of the only client (the
            complex stack's clients each take their own slice instead).
    """
    p = [
        Parameter(
            "ClientDataset",
            Type="String",
            Default="digits",
            AllowedValues=["digits", "breast_cancer", "synthetic", "csv"],
            Description="Built-in dataset of the clients, or csv for a file in S3",
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
            AllowedPattern=CSV_KEY_PATTERN,
            ConstraintDescription="empty, or a key of letters, digits and !_./- "
            "ending in .csv",
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
    if partition:
        p.insert(
            1,
            Parameter(
                "ClientPartition",
                Type="String",
                Default="1/1",
                AllowedPattern=r"^[1-9][0-9]{0,3}/[1-9][0-9]{0,3}$",
                Description="Slice i/n of the built-in dataset the client trains on",
            ),
        )
    return {param.title: t.add_parameter(param) for param in p}


def add_common_conditions_and_rules(t: Template) -> None:
    """Add the HasKeyName, UseCsvData and UseEcr conditions and the rules."""
    t.add_condition("HasKeyName", Not(Equals(Ref("KeyName"), "")))
    t.add_condition(
        "HasSsh",
        And(Condition("HasKeyName"), Not(Equals(Ref("SshCidr"), ""))),
    )
    t.add_condition("UseCsvData", Equals(Ref("ClientDataset"), "csv"))
    t.add_condition("UseEcr", Equals(Ref("PullFromEcr"), "true"))
    t.add_rule(
        "SshCidrWithKeyName",
        {
            "RuleCondition": Not(Equals(Ref("KeyName"), "")),
            "Assertions": [
                {
                    "Assert": Not(Equals(Ref("SshCidr"), "")),
                    "AssertDescription": "KeyName needs SshCidr (who may SSH in)",
                }
            ],
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
