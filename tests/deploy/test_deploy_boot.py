"""Each user-data script, run under bash with its AWS and system commands stubbed."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.boot import IMAGES, INSTANCE_ID, SCRIPTS, Boot, Sandbox

READY_URL = {
    "server": "http://127.0.0.1:5000/healthz",
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
    "": "no answer from http://127.0.0.1:500",
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
