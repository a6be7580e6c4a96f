"""Load balancers, target groups and listeners of the complex stack.

Three Application Load Balancers: the coordinator's public one (dashboard for
``HttpCidr``, ``/ws`` for remote sites in ``SiteCidr``), an internal one that
the stack's own clients dial inside the VPC, and the clients' public one
(status pages for ``HttpCidr``). Who gets what is decided by listener rules
on the source address; anything else gets a 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from troposphere import If, Ref, Template
from troposphere import elasticloadbalancingv2 as elb

import cfn_common as common
import cfn_network as network
import cfn_userdata as userdata

# The client heartbeat is 10 s; an idle timeout far above it keeps WebSockets
# open through the load balancer even while a long round is training.
IDLE_TIMEOUT_S = 3600
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
GATEWAY_ATTACHMENT = "GatewayAttachment"


@dataclass(frozen=True)
class Balancers:
    """The target groups the Auto Scaling groups register into."""

    server_target_groups: list[elb.TargetGroup]
    client_target_group: elb.TargetGroup


def _load_balancer(
    name: str, net: network.Network, *, internal: bool = False
) -> elb.LoadBalancer:
    """Return an ALB across both subnets (internet-facing unless ``internal``)."""
    attributes: dict[str, Any] = {
        "idle_timeout.timeout_seconds": str(IDLE_TIMEOUT_S),
        "routing.http.drop_invalid_header_fields.enabled": "true",
    }
    extra: dict[str, Any] = {}
    if not internal:
        # ELBv2 fails with "VPC ... has no internet gateway" if it is created
        # before the gateway is attached (AWS's DependsOn documentation).
        extra["DependsOn"] = [GATEWAY_ATTACHMENT]
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
        Scheme="internal" if internal else "internet-facing",
        Subnets=[Ref(s) for s in net.subnets],
        SecurityGroups=[Ref(net.internal_lb_sg if internal else net.lb_sg)],
        LoadBalancerAttributes=[
            elb.LoadBalancerAttributes(Key=k, Value=v) for k, v in attributes.items()
        ],
        Tags=common.name_tags(name.removesuffix("LoadBalancer").lower() + "-lb"),
        **extra,
    )


def _target_group(
    name: str, port: int, vpc: object, protocol: str = "HTTP"
) -> elb.TargetGroup:
    """Return a target group checked on ``/healthz`` over ``protocol``.

    The coordinator's are HTTPS: it serves a certificate it made at boot,
    which the load balancer uses without verifying (as ALBs do for targets).
    """
    return elb.TargetGroup(
        name,
        Port=port,
        Protocol=protocol,
        TargetType="instance",
        VpcId=vpc,
        HealthCheckPath="/healthz",
        HealthCheckProtocol=protocol,
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


def _http_listener(name: str, balancer: object, default: object) -> elb.Listener:
    """Return a port-80 listener whose default action is ``default``."""
    return elb.Listener(
        name,
        Metadata=common.skip_checks(
            (
                "CKV_AWS_2",
                "Port 80 redirects to 443 when a certificate is given; without "
                "one (and inside the VPC) it is the only listener",
            ),
            (
                "CKV_AWS_103",
                "Plain HTTP listener; the HTTPS listener uses a TLS 1.2+ policy",
            ),
        ),
        LoadBalancerArn=Ref(balancer),
        Port=80,
        Protocol="HTTP",
        DefaultActions=[default],
    )


def _forward(target: object) -> elb.Action:
    """Return the action forwarding to ``target``."""
    return elb.Action(Type="forward", TargetGroupArn=Ref(target))


def _refuse() -> elb.Action:
    """Return the action answering 403 to addresses outside the allowed ranges."""
    return elb.Action(
        Type="fixed-response",
        FixedResponseConfig=elb.FixedResponseConfig(
            StatusCode="403",
            ContentType="text/plain",
            MessageBody="fednet: this address may not use this endpoint\n",
        ),
    )


def _rule(
    name: str, listener: object, priority: int, target: object, cidr: str, *path: str
) -> elb.ListenerRule:
    """Return a rule forwarding requests from ``cidr`` (and to ``path``)."""
    conditions = [
        elb.Condition(
            Field="source-ip", SourceIpConfig=elb.SourceIpConfig(Values=[Ref(cidr)])
        )
    ]
    if path:
        conditions.append(
            elb.Condition(
                Field="path-pattern",
                PathPatternConfig=elb.PathPatternConfig(Values=list(path)),
            )
        )
    return elb.ListenerRule(
        name,
        ListenerArn=listener,
        Priority=priority,
        Conditions=conditions,
        Actions=[elb.ListenerRuleAction(Type="forward", TargetGroupArn=Ref(target))],
    )


def _add_server_listeners(
    t: Template, balancer: elb.LoadBalancer, target: elb.TargetGroup
) -> None:
    """Add the coordinator's public listeners: 80 (redirect with TLS) and 443."""
    redirect = elb.Action(
        Type="redirect",
        RedirectConfig=elb.RedirectConfig(
            Protocol="HTTPS", Port="443", StatusCode="HTTP_301"
        ),
    )
    http = t.add_resource(
        _http_listener(
            "ServerHttpListener",
            balancer,
            If("HasCertificate", redirect, _refuse()),
        )
    )
    https = t.add_resource(
        elb.Listener(
            "ServerHttpsListener",
            Condition="HasCertificate",
            LoadBalancerArn=Ref(balancer),
            Port=443,
            Protocol="HTTPS",
            SslPolicy=TLS_POLICY,
            Certificates=[elb.Certificate(CertificateArn=Ref("CertificateArn"))],
            DefaultActions=[_refuse()],
        )
    )
    served = If("HasCertificate", Ref(https), Ref(http))
    t.add_resource(_rule("SitesToWebSocket", served, 10, target, "SiteCidr", "/ws"))
    t.add_resource(_rule("HttpCidrToCoordinator", served, 20, target, "HttpCidr"))


def add_load_balancers(t: Template, net: network.Network) -> Balancers:
    """Add the three load balancers, their target groups and listeners."""
    vpc = Ref(net.vpc)
    server_lb = t.add_resource(_load_balancer("ServerLoadBalancer", net))
    internal_lb = t.add_resource(
        _load_balancer("InternalServerLoadBalancer", net, internal=True)
    )
    client_lb = t.add_resource(_load_balancer("ClientLoadBalancer", net))
    server_tg = t.add_resource(
        _target_group("ServerTargetGroup", userdata.SERVER_PORT, vpc, "HTTPS")
    )
    # A target group serves one load balancer only: the internal one has its own.
    internal_tg = t.add_resource(
        _target_group("InternalServerTargetGroup", userdata.SERVER_PORT, vpc, "HTTPS")
    )
    client_tg = t.add_resource(
        _target_group("ClientTargetGroup", userdata.CLIENT_PORT, vpc)
    )
    _add_server_listeners(t, server_lb, server_tg)
    t.add_resource(
        _http_listener("InternalServerListener", internal_lb, _forward(internal_tg))
    )
    client_http = t.add_resource(
        _http_listener("ClientHttpListener", client_lb, _refuse())
    )
    t.add_resource(
        _rule("HttpCidrToClients", Ref(client_http), 10, client_tg, "HttpCidr")
    )
    return Balancers(
        server_target_groups=[server_tg, internal_tg], client_target_group=client_tg
    )
