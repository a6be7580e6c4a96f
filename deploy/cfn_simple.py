"""The simple stack: one coordinator and one client instance in the default VPC."""

from __future__ import annotations

from troposphere import (
    Base64,
    GetAtt,
    Ref,
    Sub,
    Template,
    ec2,
    ssm,
)
from troposphere.policies import CreationPolicy, ResourceSignal

import cfn_common as common
import cfn_outputs as outputs
import cfn_params as params
import cfn_scripts as scripts
import cfn_userdata as userdata

SIGNAL_TIMEOUT = "PT15M"
# The coordinator writes its CA certificate here at boot; the client reads it.
CA_PARAMETER = "CaCertificateParameter"


def _add_security_group(t: Template) -> ec2.SecurityGroup:
    """Add the instances' security group: SSH, HTTP(S) and the coordinator port."""
    sg = t.add_resource(
        ec2.SecurityGroup(
            "InstanceSecurityGroup",
            GroupDescription="fednet instances: SSH, HTTP, HTTPS, coordinator port",
            Metadata=common.skip_checks(
                (
                    "CKV_AWS_260",
                    "The dashboard is public by default (runs need the admin "
                    "token); narrow it with HttpCidr",
                ),
            ),
            SecurityGroupIngress=[
                common.ingress(80, "Client status page", CidrIp=Ref("HttpCidr")),
                common.ingress(443, "Dashboard (https)", CidrIp=Ref("HttpCidr")),
            ],
            Tags=common.name_tags("instances"),
        )
    )
    group_id = GetAtt(sg, "GroupId")
    common.add_ssh_ingress(t, group_id)
    t.add_resource(
        ec2.SecurityGroupIngress(
            "CoordinatorIngress",
            GroupId=group_id,
            IpProtocol="tcp",
            FromPort=userdata.SERVER_PORT,
            ToPort=userdata.SERVER_PORT,
            SourceSecurityGroupId=group_id,
            Description="Clients to the coordinator WebSocket",
        )
    )
    return sg


def _instance(
    name: str, profile: object, sg: ec2.SecurityGroup, script: str
) -> ec2.Instance:
    """Return one fednet EC2 instance that signals once it is healthy."""
    return ec2.Instance(
        name,
        ImageId=Ref("LatestAmiId"),
        InstanceType=Ref("InstanceType"),
        KeyName=common.key_name(),
        IamInstanceProfile=Ref(profile),
        SecurityGroupIds=[GetAtt(sg, "GroupId")],
        MetadataOptions=ec2.MetadataOptions(**common.metadata_options()),
        BlockDeviceMappings=[common.root_volume()],
        EbsOptimized=True,
        UserData=Base64(Sub(script)),
        CreationPolicy=CreationPolicy(
            ResourceSignal=ResourceSignal(Count=1, Timeout=SIGNAL_TIMEOUT)
        ),
        Tags=common.name_tags(name.removesuffix("Instance").lower()),
    )


def build_simple() -> Template:
    """Build the simple stack: a coordinator and a client on two EC2 instances.

    Returns:
        The CloudFormation template.
    """
    t = Template(
        Description="fednet simple stack: one coordinator (https dashboard and "
        "wss WebSocket on port 5000, the dashboard also on port 443) and one "
        "client, each on an EC2 instance in the default VPC."
    )
    params.add_instance_parameters(t)
    params.add_client_data_parameters(t, partition=True)
    params.add_common_conditions_and_rules(t)
    sg = _add_security_group(t)
    t.add_resource(
        ssm.Parameter(
            CA_PARAMETER,
            Name=Sub("/${AWS::StackName}/fednet/ca-cert"),
            Type="String",
            Value="written by the coordinator at boot",
            Description="The CA certificate (PEM) of the coordinator's https/wss",
        )
    )
    put_ca = {
        "Sid": "PublishCaCertificate",
        "Effect": "Allow",
        "Action": "ssm:PutParameter",
        "Resource": Sub(
            "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}"
            ":parameter/${AWS::StackName}/fednet/ca-cert"
        ),
    }
    server_profile = common.add_instance_profile(t, "Server", [put_ca])
    client_profile = common.add_instance_profile(t, "Client")
    server = t.add_resource(
        _instance(
            "ServerInstance",
            server_profile,
            sg,
            scripts.server_script(
                "ServerInstance",
                publish_https=True,
                ca_parameter="${" + CA_PARAMETER + "}",
            ),
        )
    )
    client = t.add_resource(
        _instance(
            "ClientInstance",
            client_profile,
            sg,
            scripts.client_script(
                "ClientInstance",
                server_url="wss://${ServerInstance.PrivateIp}:5000/ws",
                publish_http=True,
                partition="partition='${ClientPartition}'\n",
                ca_parameter="${" + CA_PARAMETER + "}",
            ),
        )
    )
    outputs.add_simple_outputs(t, server, client)
    return t
