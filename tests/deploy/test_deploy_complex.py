"""The complex stack: network, groups, load balancers, state bucket, outputs."""

from __future__ import annotations

from typing import Any

HEARTBEAT_S = 10


def _props(template: dict[str, Any], name: str) -> dict[str, Any]:
    props: dict[str, Any] = template["Resources"][name]["Properties"]
    return props


def test_two_public_subnets_sit_in_distinct_availability_zones(
    complex_: dict[str, Any], cfn: Any
) -> None:
    """Subnet i takes AZ i of Fn::GetAZs and CIDR i of Fn::Cidr over the VPC."""
    subnets = cfn.resources_of(complex_, "AWS::EC2::Subnet")

    assert len(subnets) == 2
    zones = set()
    for sub in subnets.values():
        props = sub["Properties"]
        index, azs = props["AvailabilityZone"]["Fn::Select"]
        assert azs == {"Fn::GetAZs": {"Ref": "AWS::Region"}}
        cidr_index, cidr = props["CidrBlock"]["Fn::Select"]
        assert cidr_index == index
        assert cidr["Fn::Cidr"][0] == {"Fn::GetAtt": ["Vpc", "CidrBlock"]}
        zones.add(index)
    assert zones == {0, 1}


def test_subnets_route_to_the_internet_gateway(
    complex_: dict[str, Any], cfn: Any
) -> None:
    """A default route through the attached gateway serves both subnets."""
    route = _props(complex_, "DefaultRoute")
    assocs = cfn.resources_of(complex_, "AWS::EC2::SubnetRouteTableAssociation")

    assert route["DestinationCidrBlock"] == "0.0.0.0/0"
    assert route["GatewayId"] == {"Ref": "InternetGateway"}
    assert complex_["Resources"]["DefaultRoute"]["DependsOn"] == ["GatewayAttachment"]
    assert sorted(a["Properties"]["SubnetId"]["Ref"] for a in assocs.values()) == [
        "PublicSubnet1",
        "PublicSubnet2",
    ]


def test_only_one_coordinator_runs_and_updates_never_overlap(
    complex_: dict[str, Any],
) -> None:
    """Server group: min 1, max 3, desired 1, rolling one at a time, none kept."""
    group = complex_["Resources"]["ServerGroup"]
    props = group["Properties"]
    rolling = group["UpdatePolicy"]["AutoScalingRollingUpdate"]

    assert (props["MinSize"], props["MaxSize"], props["DesiredCapacity"]) == (
        "1",
        "3",
        "1",
    )
    assert rolling["MaxBatchSize"] == 1
    assert rolling["MinInstancesInService"] == 0
    assert rolling["WaitOnResourceSignals"] is True
    assert group["CreationPolicy"]["ResourceSignal"]["Count"] == "1"


def test_no_scaling_policy_can_add_coordinators(complex_: dict[str, Any]) -> None:
    """No scaling policy or scheduled action exists in the stack."""
    kinds = {res["Type"] for res in complex_["Resources"].values()}

    assert not {k for k in kinds if "ScalingPolicy" in k or "ScheduledAction" in k}


def test_client_group_holds_one_to_three_clients(complex_: dict[str, Any]) -> None:
    """Client group: min 1, max 3, desired from ClientCount (1-3)."""
    group = complex_["Resources"]["ClientGroup"]
    count = complex_["Parameters"]["ClientCount"]

    assert (group["Properties"]["MinSize"], group["Properties"]["MaxSize"]) == (
        "1",
        "3",
    )
    assert group["Properties"]["DesiredCapacity"] == {"Ref": "ClientCount"}
    assert (count["MinValue"], count["MaxValue"]) == (1, 3)
    assert group["CreationPolicy"]["ResourceSignal"]["Count"] == {"Ref": "ClientCount"}


def test_groups_use_elb_health_checks_with_a_grace_period(
    complex_: dict[str, Any],
) -> None:
    """Both groups replace instances the load balancer finds unhealthy."""
    for name in ("ServerGroup", "ClientGroup"):
        props = _props(complex_, name)
        assert props["HealthCheckType"] == "ELB", name
        assert props["HealthCheckGracePeriod"] >= 300, name
        assert len(props["VPCZoneIdentifier"]) == 2, name


def test_load_balancers_keep_websockets_open_well_past_the_heartbeat(
    complex_: dict[str, Any], cfn: Any
) -> None:
    """Idle timeout is 3600 s, far above the 10 s client heartbeat."""
    balancers = cfn.resources_of(complex_, "AWS::ElasticLoadBalancingV2::LoadBalancer")

    assert set(balancers) == {
        "ServerLoadBalancer",
        "InternalServerLoadBalancer",
        "ClientLoadBalancer",
    }
    for name, lb in balancers.items():
        attrs = {
            a["Key"]: a["Value"] for a in lb["Properties"]["LoadBalancerAttributes"]
        }
        assert int(attrs["idle_timeout.timeout_seconds"]) == 3600, name
        assert int(attrs["idle_timeout.timeout_seconds"]) >= 100 * HEARTBEAT_S


def test_target_groups_check_healthz_on_the_app_ports(complex_: dict[str, Any]) -> None:
    """The coordinator is checked on 5000, the clients on 5001, both /healthz.

    The coordinator serves only https (its boot-time certificate), so both of
    its target groups forward and check over HTTPS; a client's status page
    is plain HTTP.
    """
    for name, port, protocol in (
        ("ServerTargetGroup", 5000, "HTTPS"),
        ("InternalServerTargetGroup", 5000, "HTTPS"),
        ("ClientTargetGroup", 5001, "HTTP"),
    ):
        props = _props(complex_, name)
        assert props["Port"] == port, name
        assert props["HealthCheckPath"] == "/healthz", name
        assert props["Matcher"] == {"HttpCode": "200"}, name
        assert props["Protocol"] == props["HealthCheckProtocol"] == protocol, name


def test_https_listener_exists_only_with_a_certificate(
    complex_: dict[str, Any],
) -> None:
    """The HTTPS listener (TLS 1.2+) and its ingress depend on CertificateArn."""
    listener = complex_["Resources"]["ServerHttpsListener"]

    assert complex_["Parameters"]["CertificateArn"]["Default"] == ""
    assert complex_["Conditions"]["HasCertificate"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "CertificateArn"}, ""]}]
    }
    assert listener["Condition"] == "HasCertificate"
    assert listener["Properties"]["Port"] == 443
    assert listener["Properties"]["SslPolicy"].startswith("ELBSecurityPolicy-TLS13")
    assert complex_["Resources"]["HttpsFromHttpCidr"]["Condition"] == "HasCertificate"


def test_instances_take_app_traffic_only_from_the_load_balancers(
    complex_: dict[str, Any], cfn: Any
) -> None:
    """App ports open to the load balancers' groups; SSH to SshCidr; nothing else."""
    instance_sg = _props(complex_, "InstanceSecurityGroup")
    rules = {
        name: r["Properties"]
        for name, r in cfn.resources_of(
            complex_, "AWS::EC2::SecurityGroupIngress"
        ).items()
        if r["Properties"]["GroupId"] == {"Ref": "InstanceSecurityGroup"}
    }

    assert "SecurityGroupIngress" not in instance_sg
    assert {
        name: (r["FromPort"], r.get("SourceSecurityGroupId") or r["CidrIp"])
        for name, r in rules.items()
    } == {
        "ServerPortIngress": (5000, {"Ref": "LoadBalancerSecurityGroup"}),
        "ClientPortIngress": (5001, {"Ref": "LoadBalancerSecurityGroup"}),
        "InternalServerPortIngress": (
            5000,
            {"Ref": "InternalLoadBalancerSecurityGroup"},
        ),
        "SshFromSshCidr": (22, {"Ref": "SshCidr"}),
    }


def test_load_balancer_dns_names_are_exported(complex_: dict[str, Any]) -> None:
    """Both DNS names are outputs exported under the stack's name."""
    outputs = complex_["Outputs"]

    for name, lb in (
        ("ServerLoadBalancerDNS", "ServerLoadBalancer"),
        ("ClientLoadBalancerDNS", "ClientLoadBalancer"),
    ):
        assert outputs[name]["Value"] == {"Fn::GetAtt": [lb, "DNSName"]}
        assert outputs[name]["Export"]["Name"] == {
            "Fn::Sub": "${AWS::StackName}-" + name
        }


def test_state_bucket_is_versioned_encrypted_private_and_kept(
    complex_: dict[str, Any],
) -> None:
    """The state bucket keeps versions, encrypts, blocks public access, survives."""
    bucket = complex_["Resources"]["StateBucket"]
    props = bucket["Properties"]
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]

    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(props["PublicAccessBlockConfiguration"]) == 4
    assert bucket["DeletionPolicy"] == "Retain"
    policy = _props(complex_, "StateBucketPolicy")["PolicyDocument"]["Statement"][0]
    assert policy["Effect"] == "Deny"
    assert policy["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_only_the_coordinator_role_touches_the_state_bucket(
    complex_: dict[str, Any],
) -> None:
    """The server role's S3 rights name only the state bucket; clients have none."""

    def s3_statements(role: str) -> list[dict[str, Any]]:
        (policy,) = _props(complex_, role)["Policies"]
        return [
            s
            for s in policy["PolicyDocument"]["Statement"]
            if "Action" in s and any(a.startswith("s3:") for a in s["Action"])
        ]

    server = s3_statements("ServerRole")
    assert {a for s in server for a in s["Action"]} == {
        "s3:ListBucket",
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
    }
    for statement in server:
        for resource in statement["Resource"]:
            assert "StateBucket" in repr(resource), resource
    assert "StateBucket" not in repr(_props(complex_, "ClientRole"))


def test_coordinator_restores_state_before_starting_and_saves_it_after(
    complex_: dict[str, Any], cfn: Any
) -> None:
    """Boot restores from S3 first; a 30 s timer and container stop save it back."""
    body = cfn.user_data_bodies(complex_)["ServerLaunchTemplate"]
    restore = body.index("aws s3 sync 's3://${StateBucket}/state/' /var/lib/fednet/")
    start = body.index("systemctl enable --now fednet-server.service")

    assert restore < start
    assert "fednet-state-save.timer" in body[start:].splitlines()[0]
    assert "OnUnitActiveSec=30s" in body
    assert "ExecStopPost=/usr/local/bin/fednet-state-save" in body
    assert "-v /var/lib/fednet:/var/lib/fednet" in body
    assert "FEDNET_STATE_DIR=/var/lib/fednet" in body
    save = cfn.embedded_scripts(body)["/usr/local/bin/fednet-state-save"]
    assert "dest='s3://${StateBucket}/state/'" in save


def test_clients_join_the_coordinator_through_the_internal_load_balancer(
    complex_: dict[str, Any], cfn: Any
) -> None:
    """Client user data dials the internal load balancer, inside the VPC."""
    body = cfn.user_data_bodies(complex_)["ClientLaunchTemplate"]

    assert "FEDNET_SERVER=ws://${InternalServerLoadBalancer.DNSName}/ws\n" in body
