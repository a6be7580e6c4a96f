"""VPC, subnets and security groups of the complex stack."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from troposphere import (
    Cidr,
    GetAtt,
    GetAZs,
    Ref,
    Select,
    Template,
    ec2,
)

import cfn_common as common
import cfn_userdata as userdata


@dataclass(frozen=True)
class Network:
    """The network resources the instances and load balancers attach to."""

    vpc: ec2.VPC
    subnets: list[ec2.Subnet]
    instance_sg: ec2.SecurityGroup
    lb_sg: ec2.SecurityGroup
    internal_lb_sg: ec2.SecurityGroup


def _add_subnets(t: Template, vpc: ec2.VPC) -> list[ec2.Subnet]:
    """Add two public subnets, each in its own availability zone, and routes."""
    igw = t.add_resource(
        ec2.InternetGateway("InternetGateway", Tags=common.name_tags("igw"))
    )
    attachment = t.add_resource(
        ec2.VPCGatewayAttachment(
            "GatewayAttachment", VpcId=Ref(vpc), InternetGatewayId=Ref(igw)
        )
    )
    table = t.add_resource(
        ec2.RouteTable(
            "PublicRouteTable", VpcId=Ref(vpc), Tags=common.name_tags("public")
        )
    )
    t.add_resource(
        ec2.Route(
            "DefaultRoute",
            DependsOn=[attachment.title],
            RouteTableId=Ref(table),
            DestinationCidrBlock="0.0.0.0/0",
            GatewayId=Ref(igw),
        )
    )
    subnets = []
    for index in range(2):
        subnet = t.add_resource(
            ec2.Subnet(
                f"PublicSubnet{index + 1}",
                VpcId=Ref(vpc),
                AvailabilityZone=Select(index, GetAZs(Ref("AWS::Region"))),
                CidrBlock=Select(index, Cidr(GetAtt(vpc, "CidrBlock"), 2, 8)),
                MapPublicIpOnLaunch=True,
                Tags=common.name_tags(f"public-{index + 1}"),
            )
        )
        t.add_resource(
            ec2.SubnetRouteTableAssociation(
                f"PublicSubnet{index + 1}RouteTable",
                SubnetId=Ref(subnet),
                RouteTableId=Ref(table),
            )
        )
        subnets.append(subnet)
    return subnets


_NO_OTHER_EGRESS = ec2.SecurityGroupRule(
    IpProtocol="icmp",
    FromPort=252,
    ToPort=86,
    CidrIp="255.255.255.255/32",
    Description="Disallow all other traffic",
)


def _group(t: Template, name: str, vpc: ec2.VPC, **props: Any) -> ec2.SecurityGroup:
    """Add a security group of the VPC tagged after ``name``."""
    role = name.removesuffix("SecurityGroup")
    return t.add_resource(
        ec2.SecurityGroup(
            name, VpcId=Ref(vpc), Tags=common.name_tags(role.lower()), **props
        )
    )


def _link(
    t: Template, name: str, port: int, source: object, target: object, what: str
) -> None:
    """Let ``source`` reach ``target`` on ``port`` (egress and ingress rules)."""
    t.add_resource(
        ec2.SecurityGroupEgress(
            f"{name}Egress",
            GroupId=Ref(source),
            IpProtocol="tcp",
            FromPort=port,
            ToPort=port,
            DestinationSecurityGroupId=Ref(target),
            Description=what,
        )
    )
    t.add_resource(
        ec2.SecurityGroupIngress(
            f"{name}Ingress",
            GroupId=Ref(target),
            IpProtocol="tcp",
            FromPort=port,
            ToPort=port,
            SourceSecurityGroupId=Ref(source),
            Description=what,
        )
    )


def _add_public_ingress(t: Template, lb_sg: ec2.SecurityGroup) -> None:
    """Open the public load balancers to HttpCidr and SiteCidr (443: with TLS).

    The listeners' rules then decide per address what is forwarded. SiteCidr
    gets rules of its own only when it differs from HttpCidr: EC2 refuses a
    duplicate rule.
    """
    for port, scheme in ((80, "HTTP"), (443, "HTTPS")):
        for cidr, condition in (("HttpCidr", None), ("SiteCidr", "SiteCidrDiffers")):
            if port == 443:
                condition = (
                    "HasCertificate"
                    if condition is None
                    else f"HasCertificateAnd{condition}"
                )
            props: dict[str, Any] = {"Condition": condition} if condition else {}
            if (port, cidr) == (80, "HttpCidr"):
                props["Metadata"] = common.skip_checks(
                    (
                        "CKV_AWS_260",
                        "The dashboard is public by default (runs need the "
                        "admin token); narrow it with HttpCidr",
                    ),
                )
            t.add_resource(
                ec2.SecurityGroupIngress(
                    f"{scheme.title()}From{cidr}",
                    GroupId=Ref(lb_sg),
                    IpProtocol="tcp",
                    FromPort=port,
                    ToPort=port,
                    CidrIp=Ref(cidr),
                    Description=f"{scheme} from {cidr}",
                    **props,
                )
            )


def _add_security_groups(
    t: Template, vpc: ec2.VPC
) -> tuple[ec2.SecurityGroup, ec2.SecurityGroup, ec2.SecurityGroup]:
    """Add the public and internal load balancers' and the instances' groups."""
    # SecurityGroupEgress replaces the default allow-all egress; the links
    # below add the instance ports (the same placeholder rule CDK uses).
    lb_sg = _group(
        t,
        "LoadBalancerSecurityGroup",
        vpc,
        GroupDescription="fednet public load balancers: HTTP(S) from HttpCidr "
        "and SiteCidr",
        SecurityGroupEgress=[_NO_OTHER_EGRESS],
    )
    internal_sg = _group(
        t,
        "InternalLoadBalancerSecurityGroup",
        vpc,
        GroupDescription="fednet internal load balancer: clients in the stack",
        SecurityGroupEgress=[_NO_OTHER_EGRESS],
    )
    instance_sg = _group(
        t,
        "InstanceSecurityGroup",
        vpc,
        GroupDescription="fednet instances: app ports from the load balancers",
        SecurityGroupEgress=[
            common.egress(443, "Packages, images, AWS APIs", CidrIp="0.0.0.0/0"),
            common.egress(80, "Packages and images", CidrIp="0.0.0.0/0"),
        ],
    )
    common.add_ssh_ingress(t, Ref(instance_sg))
    _add_public_ingress(t, lb_sg)
    ports = (("Server", userdata.SERVER_PORT), ("Client", userdata.CLIENT_PORT))
    for role, port in ports:
        _link(t, f"{role}Port", port, lb_sg, instance_sg, f"{role} port from ALBs")
    _link(
        t,
        "InternalServerPort",
        userdata.SERVER_PORT,
        internal_sg,
        instance_sg,
        "Server port from the internal ALB",
    )
    _link(t, "InStackClients", 80, instance_sg, internal_sg, "Clients to the ALB")
    return lb_sg, internal_sg, instance_sg


def add_network(t: Template) -> Network:
    """Add the VPC, its two public subnets and the security groups."""
    vpc = t.add_resource(
        ec2.VPC(
            "Vpc",
            CidrBlock=Ref("VpcCidr"),
            EnableDnsHostnames=True,
            EnableDnsSupport=True,
            Tags=common.name_tags("vpc"),
        )
    )
    subnets = _add_subnets(t, vpc)
    lb_sg, internal_sg, instance_sg = _add_security_groups(t, vpc)
    return Network(
        vpc=vpc,
        subnets=subnets,
        instance_sg=instance_sg,
        lb_sg=lb_sg,
        internal_lb_sg=internal_sg,
    )
