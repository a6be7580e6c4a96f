"""Run a user-data script under bash in a sandbox, its outside world stubbed.

``dnf``, ``systemctl``, ``docker``, ``aws``, ``curl`` and ``cfn-signal`` are
one stub script that logs each call (argv joined by US, \\x1f) and answers
what the boot path asks. Absolute paths of the script move under a sandbox
root, and the readiness wait is cut to two quick tries.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

STUBBED = ("dnf", "systemctl", "docker", "aws", "curl", "cfn-signal")
SANDBOXED = (
    "/var/log/",
    "/var/lib/",
    "/etc/fednet",
    "/etc/systemd/system/",
    "/usr/local/bin/",
    "/run/",
)
# (stack, user-data resource, the logical ID it signals, its role)
SCRIPTS = [
    ("simple", "ServerInstance", "ServerInstance", "server"),
    ("simple", "ClientInstance", "ClientInstance", "client"),
    ("complex", "ServerLaunchTemplate", "ServerGroup", "server"),
    ("complex", "ClientLaunchTemplate", "ClientGroup", "client"),
]
IMAGES = {
    "ServerImage": "registry.example.org:5000/fl-server@sha256:" + "a" * 64,
    "ClientImage": "registry.example.org:5000/fl-client:1.0",
}
INSTANCE_ID = "i-0000000000000000b"
# Values of the ${...} placeholders no parameter default provides.
ATTRIBUTES = {
    "AWS::StackName": "fednet",
    "AWS::Region": "eu-west-1",
    "ServerInstance.PrivateIp": "10.0.0.5",
    "InternalServerLoadBalancer.DNSName": "internal-fednet.example",
    "StateBucket": "fednet-state-bucket",
    "ClientCount": "2",
    "CaCertificateParameter": "/fednet/fednet/ca-cert",
}

_STUB = r"""#!/bin/bash
name=$(basename "$0")
(IFS=$'\x1f'; printf '%s\n' "$name$IFS$*") >>"$STUB_CALLS"
line="$name $*"
if [ -n "$STUB_FAIL" ] && [[ "$line" == "$STUB_FAIL"* ]]; then
  echo "stub: $STUB_FAIL failed" >&2
  exit 1
fi
case "$name $1 $2" in
  "curl "*)
    case "$*" in
      *api/token*) echo imds-token ;;
      *meta-data/instance-id*) echo "$STUB_INSTANCE_ID" ;;
      *meta-data/local-ipv4*) echo 10.0.0.7 ;;
      *127.0.0.1*) [ "$STUB_READY" = 1 ] || exit 7 ;;
    esac ;;
  "aws ssm get-parameter" | "aws secretsmanager get-secret-value")
    case "$*" in *ca-cert*)
      printf '%s\n' '-----BEGIN CERTIFICATE-----' stub '-----END CERTIFICATE-----'
      exit 0 ;;
    esac
    while [ $# -gt 0 ]; do
      case "$1" in --secret-id | --name) echo "secret-of-${2#/}" ;; esac
      shift
    done ;;
  "aws autoscaling describe-auto-scaling-instances") echo client-group ;;
  "aws autoscaling describe-auto-scaling-groups") echo "$STUB_PEERS" ;;
  "aws ec2 describe-tags") printf '%b' "$STUB_TAGS" ;;
  "aws ecr get-login-password") echo ecr-password ;;
  "aws s3 cp") : >"$4" ;;
  "docker run "*)
    case "$*" in *" -u") id -u ;; *" -g") id -g ;; esac ;;
  "docker login "*) cat >/dev/null ;;
esac
exit 0
"""


@dataclass
class Boot:
    """The outcome of one boot: exit status, console, stub calls, sandbox."""

    returncode: int
    console: str
    calls: list[list[str]]
    root: Path

    def calls_to(self, name: str) -> list[list[str]]:
        """Return the argv of every call to the stub ``name``."""
        return [c[1:] for c in self.calls if c[0] == name]

    def index(self, *prefix: str) -> int:
        """Return the position of the first call whose argv starts so."""
        for i, call in enumerate(self.calls):
            if call[: len(prefix)] == list(prefix):
                return i
        raise AssertionError(f"no call {prefix} in {self.calls}")

    def signals(self) -> list[tuple[str, str]]:
        """Return (exit code, reason) of every cfn-signal call."""
        found = []
        for argv in self.calls_to("cfn-signal"):
            opts = dict(zip(argv[::2], argv[1::2]))
            found.append((opts["--exit-code"], opts["--reason"]))
        return found

    def env_file(self, name: str) -> dict[str, str]:
        """Return the variables of ``/etc/fednet/<name>``."""
        text = (self.root / "etc/fednet" / name).read_text(encoding="utf-8")
        return dict(line.split("=", 1) for line in text.splitlines() if line)


@dataclass
class Sandbox:
    """Where and how a script boots: stubs, knobs and parameter values."""

    tmp: Path
    parameters: dict[str, str] = field(default_factory=dict)
    fail: str = ""
    ready: bool = True
    peers: str = INSTANCE_ID
    tags: str = ""

    def render(self, template: dict[str, object], body: str) -> str:
        """Render the Fn::Sub body with parameter defaults and given values."""
        values = dict(ATTRIBUTES)
        params = template["Parameters"]
        assert isinstance(params, dict)
        values.update({k: str(p.get("Default", "")) for k, p in params.items()})
        values.update(self.parameters)

        def substitute(match: re.Match[str]) -> str:
            assert match.group(1) in values, f"no value for ${{{match.group(1)}}}"
            return values[match.group(1)]

        script = re.sub(r"\$\{([A-Za-z0-9:.]+)\}", substitute, body)
        return script.replace("${!", "${")

    def boot(self, template: dict[str, object], body: str) -> Boot:
        """Run the user data ``body`` of ``template``; return what it did."""
        root, bin_dir = self.tmp / "root", self.tmp / "bin"
        for d in ("var/log", "var/lib", "etc/systemd/system", "usr/local/bin", "run"):
            (root / d).mkdir(parents=True, exist_ok=True)
        bin_dir.mkdir(exist_ok=True)
        for name in STUBBED:
            (bin_dir / name).write_text(_STUB, encoding="utf-8")
            (bin_dir / name).chmod(0o755)
        script = self.render(template, body).replace("/opt/aws/bin/", f"{bin_dir}/")
        for prefix in SANDBOXED:
            script = script.replace(prefix, f"{root}{prefix}")
        script = script.replace("health_tries=60\n", "health_tries=2\n")
        script = script.replace("    sleep 5\n", "    sleep 0\n")
        calls = self.tmp / "calls"
        env = {
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "STUB_CALLS": str(calls),
            "STUB_FAIL": self.fail,
            "STUB_READY": "1" if self.ready else "0",
            "STUB_INSTANCE_ID": INSTANCE_ID,
            "STUB_PEERS": self.peers,
            "STUB_TAGS": self.tags,
        }
        result = subprocess.run(
            ["bash", "-c", script],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        lines = calls.read_text().splitlines() if calls.exists() else []
        return Boot(
            returncode=result.returncode,
            console=result.stdout + result.stderr,
            calls=[line.split("\x1f") for line in lines],
            root=root,
        )
