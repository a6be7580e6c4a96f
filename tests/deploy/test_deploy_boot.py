"""Each user-data script, run under bash with its AWS and system commands stubbed."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.boot import IMAGES, INSTANCE_ID, SCRIPTS, Boot, Sandbox

READY_URL = {
    "server": "https://127.0.0.1:5000/healthz",
    "client": "http://127.0.0.1:5001/readyz",
}
IDS = [f"{stack}/{name}" for stack, name, _, _ in SCRIPTS]


def _boot(
    templates: dict[str, dict[str, Any]],
    cfn: Any,
    tmp_path: Path,
    stack: str,
    name: str,
    **knobs: Any,
) -> Boot:
    params = {**IMAGES, **knobs.pop("parameters", {})}
    sandbox = Sandbox(tmp_path, parameters=params, **knobs)
    body = cfn.user_data_bodies(templates[stack])[name]
    return sandbox.boot(templates[stack], body)


@pytest.mark.parametrize(("stack", "name", "target", "role"), SCRIPTS, ids=IDS)
def test_a_good_boot_installs_configures_starts_then_signals_success(
    templates: dict[str, dict[str, Any]],
    cfn: Any,
    tmp_path: Path,
    stack: str,
    name: str,
    target: str,
    role: str,
) -> None:
    """Packages, Docker, secrets, image, unit, readiness, then one signal 0."""
    boot = _boot(templates, cfn, tmp_path, stack, name)

    assert boot.returncode == 0, boot.console
    steps = [
        boot.index("dnf", "install", "-y", "-q", "aws-cfn-bootstrap"),
        boot.index("dnf", "install", "-y", "-q", "docker"),
        boot.index("systemctl", "enable", "--now", "docker"),
        boot.index("aws", "secretsmanager", "get-secret-value"),
        boot.index("docker", "pull", "-q", IMAGES[f"{role.title()}Image"]),
        boot.index("systemctl", "daemon-reload"),
        boot.index("systemctl", "enable", "--now", f"fednet-{role}.service"),
        boot.index("curl", "-fsS", "-o", "/dev/null", READY_URL[role]),
        boot.index("cfn-signal"),
    ]
    assert steps == sorted(steps)
    assert [code for code, _ in boot.signals()] == ["0"]
    (signal,) = boot.calls_to("cfn-signal")
    assert signal[signal.index("--resource") + 1] == target
    log = (boot.root / "var/log/fednet-bootstrap.log").read_text()
    assert "fednet bootstrap: installing Docker" in log
    assert boot.console == log  # the boot log also goes to the console


@pytest.mark.parametrize(("stack", "name", "target", "role"), SCRIPTS, ids=IDS)
def test_the_env_file_is_root_only_and_holds_the_tokens(
    templates: dict[str, dict[str, Any]],
    cfn: Any,
    tmp_path: Path,
    stack: str,
    name: str,
    target: str,
    role: str,
) -> None:
    """/etc/fednet is 0700, its env file 0600; tokens come from the store."""
    boot = _boot(templates, cfn, tmp_path, stack, name)
    folder = boot.root / "etc/fednet"
    env_file = folder / f"{role}.env"

    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    env = boot.env_file(f"{role}.env")
    assert env["FEDNET_JOIN_TOKEN"] == "secret-of-fednet/join-token"
    if role == "server":
        assert env["FEDNET_ADMIN_TOKEN"] == "secret-of-fednet/admin-token"
    else:
        assert "FEDNET_ADMIN_TOKEN" not in env
    unit = boot.root / f"etc/systemd/system/fednet-{role}.service"
    assert stat.S_IMODE(unit.stat().st_mode) == 0o644
    assert "secret-of" not in unit.read_text() + boot.console


# The command each failure stubs out, and what the signalled reason then says.
FAILURES = {
    "dnf install -y -q docker": "installing Docker: exit 1 at line",
    "aws secretsmanager get-secret-value": "read_secret 'fednet/join-token'",
    "docker pull": "docker pull -q",
    "systemctl enable --now fednet-": "systemctl enable --now fednet-",
    "": "no answer from http",
}


@pytest.mark.parametrize("failing", FAILURES, ids=[*list(FAILURES)[:-1], "not-ready"])
@pytest.mark.parametrize(("stack", "name", "target", "role"), SCRIPTS, ids=IDS)
def test_each_failure_signals_1_with_its_reason_and_never_0(
    templates: dict[str, dict[str, Any]],
    cfn: Any,
    tmp_path: Path,
    stack: str,
    name: str,
    target: str,
    role: str,
    failing: str,
) -> None:
    """A failed step ends the boot with one cfn-signal 1 naming the step."""
    boot = _boot(templates, cfn, tmp_path, stack, name, fail=failing, ready=False)

    assert boot.returncode != 0
    ((code, reason),) = boot.signals()
    assert code == "1"
    assert FAILURES[failing] in reason, reason
    if not failing:
        assert READY_URL[role] in reason
    assert "/var/log/fednet-bootstrap.log" in reason
    assert f"fednet bootstrap failed: {reason.split(';')[0]}" in boot.console


def test_an_ecr_image_is_pulled_after_logging_in_to_its_registry(
    templates: dict[str, dict[str, Any]], cfn: Any, tmp_path: Path
) -> None:
    """An ECR image: get-login-password in the image's region, docker login, pull."""
    registry = "123456789012.dkr.ecr.eu-central-1.amazonaws.com"
    image = f"{registry}/fl-client:1.0"
    boot = _boot(
        templates,
        cfn,
        tmp_path,
        "simple",
        "ClientInstance",
        parameters={"ClientImage": image},
    )

    assert boot.returncode == 0, boot.console
    login = boot.index("aws", "ecr", "get-login-password", "--region", "eu-central-1")
    docker_login = boot.index("docker", "login", "--username", "AWS")
    # a pipeline: both start together, and both end before the pull
    assert max(login, docker_login) < boot.index("docker", "pull", "-q", image)
    assert boot.calls[docker_login][-1] == registry


def test_a_public_image_is_pulled_without_logging_in(
    templates: dict[str, dict[str, Any]], cfn: Any, tmp_path: Path
) -> None:
    """Images outside ECR are pulled as they are."""
    boot = _boot(templates, cfn, tmp_path, "simple", "ClientInstance")

    assert boot.calls_to("docker")[0] == ["pull", "-q", IMAGES["ClientImage"]]
    assert not [c for c in boot.calls_to("aws") if c[0] == "ecr"]


@pytest.mark.parametrize(
    ("peers", "tags", "slot"),
    [
        (INSTANCE_ID, "", "1/2"),
        (f"i-0000000000000000a\t{INSTANCE_ID}", "", "2/2"),
        (f"{INSTANCE_ID}\ti-0000000000000000c", "", "1/2"),
        (f"i-0000000000000000a\t{INSTANCE_ID}", "i-0000000000000000a\t2\n", "1/2"),
        (f"i-0000000000000000c\t{INSTANCE_ID}", "i-0000000000000000c\t1\n", "2/2"),
    ],
    ids=["alone", "second-of-two-new", "first-of-two-new", "replaces-1", "replaces-2"],
)
def test_each_client_of_the_group_claims_its_own_slice(
    templates: dict[str, dict[str, Any]],
    cfn: Any,
    tmp_path: Path,
    peers: str,
    tags: str,
    slot: str,
) -> None:
    """The lowest slot no live peer holds; new peers share them by instance ID."""
    boot = _boot(
        templates,
        cfn,
        tmp_path,
        "complex",
        "ClientLaunchTemplate",
        peers=peers,
        tags=tags,
    )

    assert boot.returncode == 0, boot.console
    assert boot.env_file("client.env")["FEDNET_PARTITION"] == slot
    tag = ["--resources", INSTANCE_ID, "--tags", f"Key=fednet:slot,Value={slot[0]}"]
    assert boot.calls[boot.index("aws", "ec2", "create-tags")][-4:] == tag


def test_a_csv_client_copies_its_key_verbatim(
    templates: dict[str, dict[str, Any]], cfn: Any, tmp_path: Path
) -> None:
    """Every character ClientDataKey allows reaches `aws s3 cp` unchanged."""
    key = "site-1/data_v2!.final.csv"
    boot = _boot(
        templates,
        cfn,
        tmp_path,
        "simple",
        "ClientInstance",
        parameters={
            "ClientDataset": "csv",
            "ClientDataBucket": "my-bucket",
            "ClientDataKey": key,
        },
    )

    assert boot.returncode == 0, boot.console
    assert boot.calls[boot.index("aws", "s3", "cp")][3] == f"s3://my-bucket/{key}"
    env = boot.env_file("client.env")
    assert env["FEDNET_DATA"] == "/data/data.csv"
    assert env["FEDNET_LABEL_COLUMN"] == "label"


@pytest.mark.parametrize(
    ("stack", "name"),
    [("simple", "ServerInstance"), ("complex", "ServerLaunchTemplate")],
)
def test_the_coordinator_makes_its_certificate_and_serves_tls(
    templates: dict[str, dict[str, Any]],
    cfn: Any,
    tmp_path: Path,
    stack: str,
    name: str,
) -> None:
    """`fednet ca` at boot for the private address; https; the CA key dropped."""
    boot = _boot(templates, cfn, tmp_path, stack, name)

    assert boot.returncode == 0, boot.console
    env = boot.env_file("server.env")
    assert (env["FEDNET_TLS_CERT"], env["FEDNET_TLS_KEY"]) == (
        "/certs/server.crt",
        "/certs/server.key",
    )
    assert "FEDNET_INSECURE" not in env
    image = IMAGES["ServerImage"]
    ca = [c[c.index(image) + 1 :] for c in boot.calls_to("docker") if "ca" in c]
    assert [c[:2] for c in ca] == [["ca", "init"], ["ca", "issue"]]
    issue = ca[1]
    assert issue[2:4] == ["/certs/ca", "server"]
    sans = [issue[i + 1] for i, arg in enumerate(issue) if arg == "--san"]
    assert sans == ["10.0.0.7", "localhost", "127.0.0.1"]  # the private address
    assert boot.index("docker", "run", "--rm", "--network", "none") < boot.index(
        "systemctl", "enable", "--now", "fednet-server.service"
    )
    ready = boot.calls_to("curl")[-1]
    assert ready[3:6] == [READY_URL["server"], "--cacert", ready[5]]
    assert ready[5].endswith("/etc/fednet/tls/ca/ca.crt")
    unit = (boot.root / "etc/systemd/system/fednet-server.service").read_text()
    assert "/etc/fednet/tls/ca:/certs:ro" in unit
    published = [c for c in boot.calls_to("aws") if c[:2] == ["ssm", "put-parameter"]]
    if stack == "simple":
        (put,) = published
        assert put[put.index("--name") + 1] == "/fednet/fednet/ca-cert"
        assert put[put.index("--value") + 1].endswith("/etc/fednet/tls/ca/ca.crt")
    else:
        assert published == []  # the load balancers do not verify it


def test_the_simple_client_verifies_the_coordinator_with_the_published_ca(
    templates: dict[str, dict[str, Any]], cfn: Any, tmp_path: Path
) -> None:
    """The client reads the CA certificate from SSM and dials wss with it."""
    boot = _boot(templates, cfn, tmp_path, "simple", "ClientInstance")

    assert boot.returncode == 0, boot.console
    env = boot.env_file("client.env")
    assert env["FEDNET_SERVER"] == "wss://10.0.0.5:5000/ws"
    assert env["FEDNET_CA_FILE"] == "/trust/ca.crt"
    ca = (boot.root / "etc/fednet/trust/ca.crt").read_text()
    assert ca.startswith("-----BEGIN CERTIFICATE-----")
    unit = (boot.root / "etc/systemd/system/fednet-client.service").read_text()
    assert "/etc/fednet/trust:/trust:ro" in unit


def test_a_missing_ca_certificate_fails_the_simple_client(
    templates: dict[str, dict[str, Any]], cfn: Any, tmp_path: Path
) -> None:
    """No CA certificate in the parameter: one failure signal saying so."""
    boot = _boot(
        templates, cfn, tmp_path, "simple", "ClientInstance", fail="aws ssm get"
    )

    ((code, reason),) = boot.signals()
    assert code == "1"
    assert "reading the coordinator CA certificate" in reason, reason
