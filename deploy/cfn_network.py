"""VPC, security groups and load balancers of the complex stack."""

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
from troposphere import elasticloadbalancingv2 as elb

import cfn_common as common
import cfn_userdata as userdata

# The client heartbeat is 10 s; an idle timeout far above it keeps WebSockets
# open through the load balancer even while a long round is training.
IDLE_TIMEOUT_S = 3600
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


@dataclass(frozen=True)
class Network:
    """The network resources the instances and load balancers attach to."""

    subnets: list[ec2.Subnet]
    instance_sg: ec2.SecurityGroup
    lb_sg: ec2.SecurityGroup


@dataclass(frozen=True)
class Balancers:
    """The target groups the Auto Scaling groups register into."""

    server_target_group: elb.TargetGroup
    client_target_group: elb.TargetGroup


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


def _add_security_groups(
    t: Template, vpc: ec2.VPC
) -> tuple[ec2.SecurityGroup, ec2.SecurityGroup]:
    """Add the load balancers' and the instances' security groups."""
    lb_sg = t.add_resource(
        ec2.SecurityGroup(
            "LoadBalancerSecurityGroup",
            GroupDescription="fednet load balancers: HTTP(S) from HttpCidr",
            VpcId=Ref(vpc),
            Metadata=common.skip_checks(
                (
                    "CKV_AWS_260",
                    "The dashboard is public by default (runs need the admin "
                    "token); narrow it with HttpCidr",
                ),
            ),
            SecurityGroupIngress=[
                common.ingress(80, "HTTP from HttpCidr", CidrIp=Ref("HttpCidr")),
            ],
            # Replaces the default allow-all egress; the rules below add the
            # instance ports (the same placeholder rule CDK uses).
            SecurityGroupEgress=[
                ec2.SecurityGroupRule(
                    IpProtocol="icmp",
                    FromPort=252,
                    ToPort=86,
                    CidrIp="255.255.255.255/32",
                    Description="Disallow all other traffic",
                )
            ],
            Tags=common.name_tags("load-balancers"),
        )
    )
    instance_sg = t.add_resource(
        ec2.SecurityGroup(
            "InstanceSecurityGroup",
            GroupDescription="fednet instances: app ports from the load balancers",
            VpcId=Ref(vpc),
            SecurityGroupIngress=[
                common.ingress(22, "SSH from SshCidr", CidrIp=Ref("SshCidr")),
            ],
            SecurityGroupEgress=[
                common.egress(443, "Packages, images, AWS APIs", CidrIp="0.0.0.0/0"),
                common.egress(
                    80, "Packages, images, coordinator LB", CidrIp="0.0.0.0/0"
                ),
            ],
            Tags=common.name_tags("instances"),
        )
    )
    t.add_resource(
        ec2.SecurityGroupIngress(
            "HttpsFromHttpCidr",
            Condition="HasCertificate",
            GroupId=Ref(lb_sg),
            IpProtocol="tcp",
            FromPort=443,
            ToPort=443,
            CidrIp=Ref("HttpCidr"),
            Description="HTTPS from HttpCidr",
        )
    )
    ports = {"Server": userdata.SERVER_PORT, "Client": userdata.CLIENT_PORT}
    for role, port in ports.items():
        t.add_resource(
            ec2.SecurityGroupIngress(
                f"{role}PortFromLoadBalancers",
                GroupId=Ref(instance_sg),
                IpProtocol="tcp",
                FromPort=port,
                ToPort=port,
                SourceSecurityGroupId=Ref(lb_sg),
                Description=f"{role} port from the load balancers",
            )
        )
        t.add_resource(
            ec2.SecurityGroupEgress(
                f"{role}PortToInstances",
                GroupId=Ref(lb_sg),
                IpProtocol="tcp",
                FromPort=port,
                ToPort=port,
                DestinationSecurityGroupId=Ref(instance_sg),
                Description=f"{role} port to the instances",
            )
        )
    return lb_sg, instance_sg


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
    lb_sg, instance_sg = _add_security_groups(t, vpc)
    return Network(subnets=subnets, instance_sg=instance_sg, lb_sg=lb_sg)


def _load_balancer(name: str, net: Network) -> elb.LoadBalancer:
    """Return an internet-facing ALB across both subnets."""
    attributes: dict[str, Any] = {
        "idle_timeout.timeout_seconds": str(IDLE_TIMEOUT_S),
        "routing.http.drop_invalid_header_fields.enabled": "true",
    }
    return elb.LoadBalancer(
        name,
        Metadata=common.skip_checks(
            (
                "CKV_AWS_91",
                "Access logs need a log bucket with a per-region ELB account "
                "policy; enable them where the account keeps one",
            ),
        ),
        Type="application",
        Scheme="internet-facing",
        Subnets=[Ref(s) for s in net.subnets],
        SecurityGroups=[Ref(net.lb_sg)],
        LoadBalancerAttributes=[
            elb.LoadBalancerAttributes(Key=k, Value=v) for k, v in attributes.items()
        ],
        Tags=common.name_tags(name.removesuffix("LoadBalancer").lower() + "-lb"),
    )


def _target_group(name: str, port: int, vpc: object) -> elb.TargetGroup:
    """Return an HTTP target group checked on ``/healthz``."""
    return elb.TargetGroup(
        name,
        Port=port,
        Protocol="HTTP",
        TargetType="instance",
        VpcId=vpc,
        HealthCheckPath="/healthz",
        HealthCheckProtocol="HTTP",
        HealthCheckIntervalSeconds=15,
        HealthyThresholdCount=2,
        UnhealthyThresholdCount=3,
        Matcher=elb.Matcher(HttpCode="200"),
        TargetGroupAttributes=[
            elb.TargetGroupAttribute(
                Key="deregistration_delay.timeout_seconds", Value="30"
            )
        ],
    )


def _http_listener(name: str, balancer: object, target: object) -> elb.Listener:
    """Return the HTTP listener forwarding to ``target``."""
    return elb.Listener(
        name,
        Metadata=common.skip_checks(
            (
                "CKV_AWS_2",
                "Port 80 serves clients and browsers when no certificate is "
                "given; CertificateArn adds the HTTPS listener",
            ),
            (
                "CKV_AWS_103",
                "Plain HTTP listener; the HTTPS listener uses a TLS 1.2+ policy",
            ),
        ),
        LoadBalancerArn=Ref(balancer),
        Port=80,
        Protocol="HTTP",
        DefaultActions=[elb.Action(Type="forward", TargetGroupArn=Ref(target))],
    )


def add_load_balancers(t: Template, net: Network) -> Balancers:
    """Add the coordinator's and the clients' load balancers and listeners."""
    vpc = net.instance_sg.VpcId
    server_lb = t.add_resource(_load_balancer("ServerLoadBalancer", net))
    client_lb = t.add_resource(_load_balancer("ClientLoadBalancer", net))
    server_tg = t.add_resource(
        _target_group("ServerTargetGroup", userdata.SERVER_PORT, vpc)
    )
    client_tg = t.add_resource(
        _target_group("ClientTargetGroup", userdata.CLIENT_PORT, vpc)
    )
    t.add_resource(_http_listener("ServerHttpListener", server_lb, server_tg))
    t.add_resource(_http_listener("ClientHttpListener", client_lb, client_tg))
    t.add_resource(
        elb.Listener(
            "ServerHttpsListener",
            Condition="HasCertificate",
            LoadBalancerArn=Ref(server_lb),
            Port=443,
            Protocol="HTTPS",
            SslPolicy=TLS_POLICY,
            Certificates=[elb.Certificate(CertificateArn=Ref("CertificateArn"))],
            DefaultActions=[elb.Action(Type="forward", TargetGroupArn=Ref(server_tg))],
        )
    )
    return Balancers(server_target_group=server_tg, client_target_group=client_tg)
