"""The complex stack's traffic: gateway order, in-VPC clients, sites, TLS, updates."""

from __future__ import annotations

from typing import Any

ALB = "AWS::ElasticLoadBalancingV2::LoadBalancer"


def _props(template: dict[str, Any], name: str) -> dict[str, Any]:
    props: dict[str, Any] = template["Resources"][name]["Properties"]
    return props


def test_internet_facing_load_balancers_wait_for_the_gateway_attachment(
    complex_: dict[str, Any], cfn: Any
) -> None:
    """ELBv2 fails in a VPC with no attached gateway: each public ALB waits."""
    balancers = cfn.resources_of(complex_, ALB)
    public = {
        n: lb for n, lb in balancers.items() if lb["Properties"]["Scheme"] != "internal"
    }

    assert set(public) == {"ServerLoadBalancer", "ClientLoadBalancer"}
    for name, lb in public.items():
        assert "GatewayAttachment" in lb["DependsOn"], name


def test_in_stack_clients_reach_the_coordinator_without_http_cidr(
    complex_: dict[str, Any], cfn: Any
) -> None:
    """An internal ALB, open only to the instances, forwards to port 5000."""
    internal = _props(complex_, "InternalServerLoadBalancer")
    listener = _props(complex_, "InternalServerListener")
    opened = [
        r["Properties"]
        for r in cfn.resources_of(complex_, "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Ref": "InternalLoadBalancerSecurityGroup"}
    ]
    group = complex_["Resources"]["ServerGroup"]["Properties"]

    assert internal["Scheme"] == "internal"
    assert internal["SecurityGroups"] == [{"Ref": "InternalLoadBalancerSecurityGroup"}]
    assert [(r["FromPort"], r["SourceSecurityGroupId"]) for r in opened] == [
        (80, {"Ref": "InstanceSecurityGroup"})
    ]
    assert listener["DefaultActions"] == [
        {"Type": "forward", "TargetGroupArn": {"Ref": "InternalServerTargetGroup"}}
    ]
    assert _props(complex_, "InternalServerTargetGroup")["Port"] == 5000
    assert {"Ref": "InternalServerTargetGroup"} in group["TargetGroupARNs"]
    assert "HttpCidr" not in repr(internal) + repr(listener) + repr(opened)


def test_remote_sites_get_only_the_websocket_and_http_cidr_everything(
    complex_: dict[str, Any],
) -> None:
    """Listener rules: SiteCidr to /ws first, then HttpCidr; others get a 403."""
    sites = _props(complex_, "SitesToWebSocket")
    people = _props(complex_, "HttpCidrToCoordinator")
    fields = {c["Field"]: c for c in sites["Conditions"]}
    served = {
        "Fn::If": [
            "HasCertificate",
            {"Ref": "ServerHttpsListener"},
            {"Ref": "ServerHttpListener"},
        ]
    }

    assert sites["Priority"] < people["Priority"]
    assert fields["source-ip"]["SourceIpConfig"]["Values"] == [{"Ref": "SiteCidr"}]
    assert fields["path-pattern"]["PathPatternConfig"]["Values"] == ["/ws"]
    assert people["Conditions"] == [
        {"Field": "source-ip", "SourceIpConfig": {"Values": [{"Ref": "HttpCidr"}]}}
    ]
    assert sites["ListenerArn"] == people["ListenerArn"] == served
    https = _props(complex_, "ServerHttpsListener")["DefaultActions"]
    assert https[0]["FixedResponseConfig"]["StatusCode"] == "403"
    client = _props(complex_, "HttpCidrToClients")
    assert client["Conditions"] == people["Conditions"]


def test_site_cidr_opens_the_public_load_balancers_only_when_it_differs(
    complex_: dict[str, Any],
) -> None:
    """EC2 refuses duplicate rules, so SiteCidr's own rules are conditional."""
    resources = complex_["Resources"]

    assert complex_["Parameters"]["SiteCidr"]["Default"] == "0.0.0.0/0"
    assert resources["HttpFromSiteCidr"]["Condition"] == "SiteCidrDiffers"
    assert (
        resources["HttpsFromSiteCidr"]["Condition"]
        == "HasCertificateAndSiteCidrDiffers"
    )
    assert "Condition" not in resources["HttpFromHttpCidr"]
    assert complex_["Conditions"]["SiteCidrDiffers"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "SiteCidr"}, {"Ref": "HttpCidr"}]}]
    }


def test_with_a_certificate_port_80_redirects_and_urls_use_tls(
    complex_: dict[str, Any],
) -> None:
    """HasCertificate: 80 answers 301 to https, outputs give https and wss URLs."""
    (default,) = _props(complex_, "ServerHttpListener")["DefaultActions"]
    condition, redirect, refuse = default["Fn::If"]
    outputs = complex_["Outputs"]

    assert condition == "HasCertificate"
    assert redirect["RedirectConfig"] == {
        "Protocol": "HTTPS",
        "Port": "443",
        "StatusCode": "HTTP_301",
    }
    assert refuse["FixedResponseConfig"]["StatusCode"] == "403"
    assert outputs["ServerWebSocketUrl"]["Value"]["Fn::If"][:2] == [
        "HasCertificate",
        {"Fn::Sub": "wss://${DomainName}/ws"},
    ]
    assert outputs["DashboardUrl"]["Value"]["Fn::If"][:2] == [
        "HasCertificate",
        {"Fn::Sub": "https://${DomainName}/"},
    ]
    pairs = (("CertificateArn", "DomainName"), ("DomainName", "CertificateArn"))
    for given, needed in pairs:
        rule = complex_["Rules"][f"{given}Needs{needed}"]
        assert rule["RuleCondition"] == {
            "Fn::Not": [{"Fn::Equals": [{"Ref": given}, ""]}]
        }
        assert rule["Assertions"][0]["Assert"] == {
            "Fn::Not": [{"Fn::Equals": [{"Ref": needed}, ""]}]
        }


def test_clients_start_after_the_coordinator_has_signalled(
    complex_: dict[str, Any],
) -> None:
    """Clients signal only once welcomed, so their group follows the server's."""
    assert "ServerGroup" in complex_["Resources"]["ClientGroup"]["DependsOn"]


def test_rolling_updates_suspend_what_aws_says_to_suspend(
    complex_: dict[str, Any],
) -> None:
    """No health-check replacement or rebalancing competes with an update."""
    for name in ("ServerGroup", "ClientGroup"):
        policy = complex_["Resources"][name]["UpdatePolicy"]
        rolling = policy["AutoScalingRollingUpdate"]
        assert set(rolling["SuspendProcesses"]) == {
            "HealthCheck",
            "ReplaceUnhealthy",
            "AZRebalance",
            "AlarmNotification",
            "ScheduledActions",
        }, name


def test_each_client_claims_a_slot_and_may_tag_only_that(
    complex_: dict[str, Any], cfn: Any
) -> None:
    """The client role tags instances of the project, with fednet:slot only."""
    (policy,) = _props(complex_, "ClientRole")["Policies"]
    statements = {
        s["Sid"]: s for s in policy["PolicyDocument"]["Statement"] if "Sid" in s
    }
    body = cfn.user_data_bodies(complex_)["ClientLaunchTemplate"]

    assert statements["ClaimSlot"]["Action"] == ["ec2:CreateTags"]
    assert statements["ClaimSlot"]["Condition"] == {
        "ForAllValues:StringEquals": {"aws:TagKeys": ["fednet:slot"]},
        "StringEquals": {"aws:ResourceTag/Project": "fednet"},
    }
    assert "ClientPartition" not in complex_["Parameters"]
    assert 'partition="$slot/$count"' in body
