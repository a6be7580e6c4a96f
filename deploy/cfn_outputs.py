"""Outputs of both fednet stacks: where to open the dashboard and connect."""

from __future__ import annotations

from troposphere import Export, GetAtt, If, Output, Ref, Sub, Template, ec2


def add_simple_outputs(
    t: Template, server: ec2.Instance, client: ec2.Instance
) -> None:
    """Add the dashboard URL and the addresses of both instances."""
    t.add_output(
        [
            Output(
                "DashboardUrl",
                Description="The coordinator's dashboard",
                Value=Sub("https://${ServerInstance.PublicDnsName}/"),
            ),
            Output(
                "ServerWebSocketUrl",
                Description="Where clients in the default VPC connect (with the "
                "CA certificate in CaCertificateParameter)",
                Value=Sub("wss://${ServerInstance.PrivateIp}:5000/ws"),
            ),
            Output(
                "ClientStatusUrl",
                Description="The client's status page",
                Value=Sub("http://${ClientInstance.PublicDnsName}/"),
            ),
            Output(
                "ServerInstanceId",
                Description="Coordinator instance (aws ssm start-session --target)",
                Value=Ref(server),
            ),
            Output(
                "ClientInstanceId",
                Description="Client instance (aws ssm start-session --target)",
                Value=Ref(client),
            ),
        ]
    )


def _exported(name: str, description: str, value: object) -> Output:
    """Return an output exported as ``<stack name>-<name>``."""
    return Output(
        name,
        Description=description,
        Value=value,
        Export=Export(Sub("${AWS::StackName}-" + name)),
    )


def add_complex_outputs(t: Template) -> None:
    """Add both load balancers' DNS names, the URLs and the state bucket."""
    t.add_output(
        [
            _exported(
                "ServerLoadBalancerDNS",
                "DNS name of the coordinator's load balancer",
                GetAtt("ServerLoadBalancer", "DNSName"),
            ),
            _exported(
                "ClientLoadBalancerDNS",
                "DNS name of the clients' load balancer",
                GetAtt("ClientLoadBalancer", "DNSName"),
            ),
            _exported(
                "DashboardUrl",
                "The coordinator's dashboard",
                If(
                    "HasCertificate",
                    Sub("https://${DomainName}/"),
                    Sub("http://${ServerLoadBalancer.DNSName}/"),
                ),
            ),
            _exported(
                "ServerWebSocketUrl",
                "Where remote sites (in SiteCidr) connect",
                If(
                    "HasCertificate",
                    Sub("wss://${DomainName}/ws"),
                    Sub("ws://${ServerLoadBalancer.DNSName}/ws"),
                ),
            ),
            _exported(
                "InternalWebSocketUrl",
                "Where clients inside the VPC connect",
                Sub("ws://${InternalServerLoadBalancer.DNSName}/ws"),
            ),
            _exported(
                "StateBucketName",
                "S3 bucket holding the coordinator's state directory",
                Ref("StateBucket"),
            ),
            _exported("VpcId", "The stack's VPC", Ref("Vpc")),
        ]
    )
