"""Parameters, IAM and instance settings shared by both fednet stacks."""

from __future__ import annotations

from typing import Any

from troposphere import If, NoValue, Ref, Sub, Tags, Template, ec2, iam

ROOT_VOLUME_GIB = 16


def skip_checks(*checks: tuple[str, str]) -> dict[str, Any]:
    """Return resource Metadata that skips checkov checks, each with its reason."""
    return {"checkov": {"skip": [{"id": i, "comment": c} for i, c in checks]}}


def name_tags(role: str) -> Tags:
    """Return the Name and project tags of a resource playing ``role``."""
    return Tags(Name=Sub("${AWS::StackName}-" + role), Project="fednet")


def key_name() -> object:
    """Return the KeyName property value: the parameter, or none when empty."""
    return If("HasKeyName", Ref("KeyName"), NoValue)


def add_ssh_ingress(t: Template, group_id: object) -> ec2.SecurityGroupIngress:
    """Add the SSH rule from ``SshCidr``; it exists only with a key pair."""
    return t.add_resource(
        ec2.SecurityGroupIngress(
            "SshFromSshCidr",
            Condition="HasSsh",
            GroupId=group_id,
            IpProtocol="tcp",
            FromPort=22,
            ToPort=22,
            CidrIp=Ref("SshCidr"),
            Description="SSH from SshCidr (only with KeyName)",
        )
    )


def metadata_options() -> dict[str, Any]:
    """Return IMDSv2-only metadata options reachable from the host only.

    Hop limit 1: a reply to a container (one hop further, behind Docker's
    bridge) is dropped, so the containers, which never call AWS, cannot take
    the instance role's credentials.
    """
    return {
        "HttpEndpoint": "enabled",
        "HttpTokens": "required",
        "HttpPutResponseHopLimit": 1,
    }


def root_volume(for_launch_template: bool = False) -> object:
    """Return the encrypted gp3 root volume mapping of Amazon Linux 2023.

    Args:
        for_launch_template: Build the launch-template flavour of the mapping.
    """
    ebs = {
        "VolumeType": "gp3",
        "VolumeSize": ROOT_VOLUME_GIB,
        "Encrypted": True,
        "DeleteOnTermination": True,
    }
    if for_launch_template:
        return ec2.LaunchTemplateBlockDeviceMapping(
            DeviceName="/dev/xvda", Ebs=ec2.EBSBlockDevice(**ebs)
        )
    return ec2.BlockDeviceMapping(DeviceName="/dev/xvda", Ebs=ec2.EbsBlockDevice(**ebs))


def _token_statement(*names: str) -> dict[str, Any]:
    """Return the statement that lets an instance read the named tokens."""
    resources = []
    for name in names:
        resources.append(
            Sub(
                "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}"
                ":parameter/${" + name + "}"
            )
        )
        resources.append(
            Sub(
                "arn:${AWS::Partition}:secretsmanager:${AWS::Region}"
                ":${AWS::AccountId}:secret:${" + name + "}-??????"
            )
        )
    return {
        "Sid": "ReadTokens",
        "Effect": "Allow",
        "Action": ["ssm:GetParameter", "secretsmanager:GetSecretValue"],
        "Resource": resources,
    }


def _admin_token_deny() -> dict[str, Any]:
    """Return the statement that keeps the admin token from a client role.

    AmazonSSMManagedInstanceCore allows ``ssm:GetParameter(s)`` on every
    parameter; an explicit deny wins over that allow.
    """
    return {
        "Sid": "NeverReadTheAdminToken",
        "Effect": "Deny",
        "Action": [
            "ssm:GetParameter",
            "ssm:GetParameters",
            "ssm:GetParameterHistory",
            "ssm:GetParametersByPath",
            "secretsmanager:GetSecretValue",
        ],
        "Resource": [
            Sub(
                "arn:${AWS::Partition}:ssm:*:${AWS::AccountId}"
                ":parameter/${AdminTokenName}"
            ),
            Sub(
                "arn:${AWS::Partition}:secretsmanager:*:${AWS::AccountId}"
                ":secret:${AdminTokenName}-??????"
            ),
        ],
    }


def _ecr_pull_statement() -> object:
    """Return the statement that pulls images from this account's ECR."""
    return If(
        "UseEcr",
        {
            "Sid": "PullImagesFromEcr",
            "Effect": "Allow",
            "Action": [
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
            ],
            "Resource": [
                Sub("arn:${AWS::Partition}:ecr:*:${AWS::AccountId}:repository/*")
            ],
        },
        NoValue,
    )


def _ecr_login_statement() -> object:
    """Return the statement of ``aws ecr get-login-password`` (no resource)."""
    return If(
        "UseEcr",
        {
            "Sid": "LogInToEcr",
            "Effect": "Allow",
            "Action": ["ecr:GetAuthorizationToken"],
            "Resource": ["*"],
        },
        NoValue,
    )


def _client_data_statement() -> object:
    """Return the statement that reads the client CSV, when one is used."""
    return If(
        "UseCsvData",
        {
            "Sid": "ReadClientData",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [
                Sub("arn:${AWS::Partition}:s3:::${ClientDataBucket}/${ClientDataKey}")
            ],
        },
        NoValue,
    )


def add_instance_profile(
    t: Template, role_name: str, extra: list[object] | None = None
) -> iam.InstanceProfile:
    """Add an instance role and profile for the server or client instances.

    Args:
        t: The template.
        role_name: ``Server`` or ``Client``; prefixes the logical IDs.
        extra: More policy statements (the server's state bucket access).

    Returns:
        The instance profile.
    """
    if role_name == "Server":
        statements: list[object] = [_token_statement("JoinTokenName", "AdminTokenName")]
    else:
        statements = [
            _token_statement("JoinTokenName"),
            _admin_token_deny(),
            _client_data_statement(),
        ]
    statements += [_ecr_login_statement(), _ecr_pull_statement()]
    statements.extend(extra or [])
    role = t.add_resource(
        iam.Role(
            f"{role_name}Role",
            AssumeRolePolicyDocument={
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "ec2.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            },
            ManagedPolicyArns=[
                Sub(
                    "arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
                )
            ],
            Policies=[
                iam.Policy(
                    PolicyName="fednet-instance",
                    PolicyDocument={"Version": "2012-10-17", "Statement": statements},
                )
            ],
            Tags=name_tags(role_name.lower()),
        )
    )
    return t.add_resource(
        iam.InstanceProfile(f"{role_name}InstanceProfile", Roles=[Ref(role)])
    )


def ingress(port: int, description: str, **source: object) -> ec2.SecurityGroupRule:
    """Return one TCP ingress rule on ``port`` from a CIDR or a security group."""
    return ec2.SecurityGroupRule(
        IpProtocol="tcp",
        FromPort=port,
        ToPort=port,
        Description=description,
        **source,
    )


def egress(port: int, description: str, **dest: object) -> ec2.SecurityGroupRule:
    """Return one TCP egress rule on ``port`` to a CIDR or a security group."""
    return ec2.SecurityGroupRule(
        IpProtocol="tcp",
        FromPort=port,
        ToPort=port,
        Description=description,
        **dest,
    )
