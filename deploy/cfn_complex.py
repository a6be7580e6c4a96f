"""The complex stack: a VPC, two Auto Scaling groups behind two load balancers."""

from __future__ import annotations

from troposphere import (
    Base64,
    Equals,
    Export,
    GetAtt,
    If,
    Not,
    Output,
    Parameter,
    Ref,
    Sub,
    Template,
    autoscaling,
    ec2,
)
from troposphere.policies import (
    AutoScalingRollingUpdate,
    CreationPolicy,
    ResourceSignal,
    UpdatePolicy,
)

import cfn_common as common
import cfn_network as network
import cfn_params as params
import cfn_state as state
import cfn_userdata as userdata

SIGNAL_TIMEOUT = "PT15M"
HEALTH_CHECK_GRACE_S = 600


def _add_parameters(t: Template) -> None:
    """Add the parameters only this stack has."""
    t.add_parameter(
        Parameter(
            "VpcCidr",
            Type="String",
            Default="10.20.0.0/16",
            AllowedPattern=r"^10\.([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])"
            r"\.0\.0/16$",
            Description="IPv4 range of the new VPC (10.x.0.0/16)",
        )
    )
    t.add_parameter(
        Parameter(
            "ClientCount",
            Type="Number",
            Default=2,
            MinValue=1,
            MaxValue=3,
            Description="Desired number of client instances (the group allows 1-3)",
        )
    )
    t.add_parameter(
        Parameter(
            "CertificateArn",
            Type="String",
            Default="",
            AllowedPattern=r"^$|^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}"
            r":certificate/[A-Za-z0-9-]+$",
            Description="ACM certificate for an HTTPS listener on the coordinator's "
            "load balancer; empty for HTTP only",
        )
    )
    t.add_condition("HasCertificate", Not(Equals(Ref("CertificateArn"), "")))


def _launch_template(
    name: str, profile: object, sg: object, script: str
) -> ec2.LaunchTemplate:
    """Return a launch template for one kind of fednet instance."""
    role = name.removesuffix("LaunchTemplate").lower()
    return ec2.LaunchTemplate(
        name,
        LaunchTemplateData=ec2.LaunchTemplateData(
            ImageId=Ref("LatestAmiId"),
            InstanceType=Ref("InstanceType"),
            KeyName=common.key_name(),
            IamInstanceProfile=ec2.IamInstanceProfile(Arn=GetAtt(profile, "Arn")),
            SecurityGroupIds=[Ref(sg)],
            MetadataOptions=ec2.MetadataOptions(**common.metadata_options()),
            BlockDeviceMappings=[common.root_volume(for_launch_template=True)],
            EbsOptimized=True,
            UserData=Base64(Sub(script)),
            TagSpecifications=[
                ec2.TagSpecifications(ResourceType=kind, Tags=common.name_tags(role))
                for kind in ("instance", "volume")
            ],
        ),
    )


def _group(
    name: str,
    template: ec2.LaunchTemplate,
    target_group: object,
    subnets: list[object],
    *,
    desired: object,
    min_in_service: int,
) -> autoscaling.AutoScalingGroup:
    """Return an Auto Scaling group (1-3) with ELB health checks and signals."""
    return autoscaling.AutoScalingGroup(
        name,
        DependsOn=["DefaultRoute"],
        LaunchTemplate=autoscaling.LaunchTemplateSpecification(
            LaunchTemplateId=Ref(template),
            Version=GetAtt(template, "LatestVersionNumber"),
        ),
        MinSize="1",
        MaxSize="3",
        DesiredCapacity=desired,
        VPCZoneIdentifier=[Ref(s) for s in subnets],
        TargetGroupARNs=[Ref(target_group)],
        HealthCheckType="ELB",
        HealthCheckGracePeriod=HEALTH_CHECK_GRACE_S,
        Tags=[
            autoscaling.Tag("Project", "fednet", True),
        ],
        CreationPolicy=CreationPolicy(
            ResourceSignal=ResourceSignal(Count=desired, Timeout=SIGNAL_TIMEOUT)
        ),
        UpdatePolicy=UpdatePolicy(
            AutoScalingRollingUpdate=AutoScalingRollingUpdate(
                MaxBatchSize=1,
                MinInstancesInService=min_in_service,
                WaitOnResourceSignals=True,
                PauseTime=SIGNAL_TIMEOUT,
            )
        ),
    )


def build_complex() -> Template:
    """Build the complex stack: VPC, load balancers, one coordinator group, clients.

    Returns:
        The CloudFormation template.
    """
    t = Template(
        Description="fednet complex stack: a VPC over two availability zones, the "
        "coordinator and the clients in Auto Scaling groups behind Application "
        "Load Balancers, coordinator state saved to S3."
    )
    params.add_instance_parameters(t)
    params.add_client_data_parameters(t)
    params.add_common_conditions_and_rules(t)
    _add_parameters(t)
    net = network.add_network(t)
    bucket = state.add_state_bucket(t)
    server_profile = common.add_instance_profile(
        t, "Server", state.state_bucket_statements(bucket)
    )
    client_profile = common.add_instance_profile(t, "Client")
    balancers = network.add_load_balancers(t, net)
    server_lt = t.add_resource(
        _launch_template(
            "ServerLaunchTemplate",
            server_profile,
            net.instance_sg,
            userdata.server_script(
                "ServerGroup", publish_http=False, state_bucket=True
            ),
        )
    )
    client_lt = t.add_resource(
        _launch_template(
            "ClientLaunchTemplate",
            client_profile,
            net.instance_sg,
            userdata.client_script(
                "ClientGroup",
                server_url="ws://${ServerLoadBalancer.DNSName}/ws",
                publish_http=False,
            ),
        )
    )
    # One coordinator only: desired 1, no scaling policy, and rolling updates
    # that stop the old instance (saving its state) before the new one starts.
    t.add_resource(
        _group(
            "ServerGroup",
            server_lt,
            balancers.server_target_group,
            net.subnets,
            desired="1",
            min_in_service=0,
        )
    )
    t.add_resource(
        _group(
            "ClientGroup",
            client_lt,
            balancers.client_target_group,
            net.subnets,
            desired=Ref("ClientCount"),
            min_in_service=1,
        )
    )
    _add_outputs(t)
    return t


def _exported(name: str, description: str, value: object) -> Output:
    """Return an output exported as ``<stack name>-<name>``."""
    return Output(
        name,
        Description=description,
        Value=value,
        Export=Export(Sub("${AWS::StackName}-" + name)),
    )


def _add_outputs(t: Template) -> None:
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
                    Sub("https://${ServerLoadBalancer.DNSName}/"),
                    Sub("http://${ServerLoadBalancer.DNSName}/"),
                ),
            ),
            _exported(
                "ServerWebSocketUrl",
                "Where clients outside the stack connect",
                Sub("ws://${ServerLoadBalancer.DNSName}/ws"),
            ),
            _exported(
                "StateBucketName",
                "S3 bucket holding the coordinator's state directory",
                Ref("StateBucket"),
            ),
            _exported("VpcId", "The stack's VPC", Ref("Vpc")),
        ]
    )
