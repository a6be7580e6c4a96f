"""The complex stack: a VPC, two Auto Scaling groups behind load balancers."""

from __future__ import annotations

from troposphere import (
    And,
    Base64,
    Condition,
    Equals,
    GetAtt,
    Not,
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

import cfn_balancers as balancers
import cfn_common as common
import cfn_network as network
import cfn_outputs as outputs
import cfn_params as params
import cfn_scripts as scripts
import cfn_slots as slots
import cfn_state as state

SIGNAL_TIMEOUT = "PT15M"
HEALTH_CHECK_GRACE_S = 600
# What AWS says to suspend during a rolling update with WaitOnResourceSignals
# (AutoScalingRollingUpdate documentation): no replacement or rebalancing may
# start instances the update does not wait for.
SUSPENDED_DURING_UPDATES = [
    "HealthCheck",
    "ReplaceUnhealthy",
    "AZRebalance",
    "AlarmNotification",
    "ScheduledActions",
]


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
            "SiteCidr",
            Type="String",
            Default="0.0.0.0/0",
            AllowedPattern=params.CIDR_PATTERN,
            MinLength=9,
            MaxLength=18,
            ConstraintDescription="an IPv4 CIDR such as 198.51.100.0/24",
            Description="IPv4 range of remote sites allowed to join at /ws (the "
            "stack's own clients connect inside the VPC)",
        )
    )
    t.add_parameter(
        Parameter(
            "CertificateArn",
            Type="String",
            Default="",
            AllowedPattern=r"^$|^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}"
            r":certificate/[A-Za-z0-9-]+$",
            Description="ACM certificate of DomainName: HTTPS on the "
            "coordinator's load balancer, port 80 redirects; empty for HTTP only",
        )
    )
    t.add_parameter(
        Parameter(
            "DomainName",
            Type="String",
            Default="",
            AllowedPattern=r"^$|^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$",
            MaxLength=253,
            Description="With CertificateArn: the name (CNAME or alias to "
            "ServerLoadBalancerDNS) in the dashboard and wss:// URLs",
        )
    )
    t.add_condition("HasCertificate", Not(Equals(Ref("CertificateArn"), "")))
    t.add_condition("SiteCidrDiffers", Not(Equals(Ref("SiteCidr"), Ref("HttpCidr"))))
    t.add_condition(
        "HasCertificateAndSiteCidrDiffers",
        And(Condition("HasCertificate"), Condition("SiteCidrDiffers")),
    )
    pairs = (("CertificateArn", "DomainName"), ("DomainName", "CertificateArn"))
    for given, needed in pairs:
        t.add_rule(
            f"{given}Needs{needed}",
            {
                "RuleCondition": Not(Equals(Ref(given), "")),
                "Assertions": [
                    {
                        "Assert": Not(Equals(Ref(needed), "")),
                        "AssertDescription": f"{given} needs {needed}",
                    }
                ],
            },
        )


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
    target_groups: list[object],
    subnets: list[object],
    *,
    desired: object,
    min_in_service: int,
    after: list[str],
) -> autoscaling.AutoScalingGroup:
    """Return an Auto Scaling group (1-3) with ELB health checks and signals."""
    return autoscaling.AutoScalingGroup(
        name,
        DependsOn=after,
        LaunchTemplate=autoscaling.LaunchTemplateSpecification(
            LaunchTemplateId=Ref(template),
            Version=GetAtt(template, "LatestVersionNumber"),
        ),
        MinSize="1",
        MaxSize="3",
        DesiredCapacity=desired,
        VPCZoneIdentifier=[Ref(s) for s in subnets],
        TargetGroupARNs=[Ref(g) for g in target_groups],
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
                SuspendProcesses=SUSPENDED_DURING_UPDATES,
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
    params.add_client_data_parameters(t, partition=False)
    params.add_common_conditions_and_rules(t)
    _add_parameters(t)
    net = network.add_network(t)
    bucket = state.add_state_bucket(t)
    server_profile = common.add_instance_profile(
        t, "Server", state.state_bucket_statements(bucket)
    )
    client_profile = common.add_instance_profile(t, "Client", slots.slot_statements())
    lbs = balancers.add_load_balancers(t, net)
    server_lt = t.add_resource(
        _launch_template(
            "ServerLaunchTemplate",
            server_profile,
            net.instance_sg,
            scripts.server_script(
                "ServerGroup", publish_https=False, state=state.state_script()
            ),
        )
    )
    client_lt = t.add_resource(
        _launch_template(
            "ClientLaunchTemplate",
            client_profile,
            net.instance_sg,
            scripts.client_script(
                "ClientGroup",
                server_url="ws://${InternalServerLoadBalancer.DNSName}/ws",
                publish_http=False,
                partition=slots.SLOT_SCRIPT,
            ),
        )
    )
    # One coordinator only: desired 1, no scaling policy, and rolling updates
    # that stop the old instance (saving its state) before the new one starts.
    t.add_resource(
        _group(
            "ServerGroup",
            server_lt,
            lbs.server_target_groups,
            net.subnets,
            desired="1",
            min_in_service=0,
            after=["DefaultRoute"],
        )
    )
    # Clients start once the coordinator has signalled: they signal only when
    # it has welcomed them.
    t.add_resource(
        _group(
            "ClientGroup",
            client_lt,
            [lbs.client_target_group],
            net.subnets,
            desired=Ref("ClientCount"),
            min_in_service=1,
            after=["DefaultRoute", "ServerGroup"],
        )
    )
    outputs.add_complex_outputs(t)
    return t
