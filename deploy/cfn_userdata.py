"""The common start of every user-data script: logging, signals, helpers.

Scripts are Fn::Sub bodies: ``${Name}`` is substituted by CloudFormation;
bash variables use the ``$name`` form only. The bodies of the coordinator
and the clients are in ``cfn_scripts``.
"""

from __future__ import annotations

import re

SERVER_PORT = 5000
CLIENT_PORT = 5001
STATE_DIR = "/var/lib/fednet"
DATA_DIR = "/var/lib/fednet-data"
BOOT_LOG = "/var/log/fednet-bootstrap.log"
HEALTH_TRIES = 60
HEALTH_INTERVAL_S = 5

_PRELUDE = """#!/bin/bash
# fednet @ROLE@ bootstrap for Amazon Linux 2023, rendered by CloudFormation.
set -Eeuo pipefail
shopt -s inherit_errexit  # command substitutions stop at their first error too
# cloud-init's final stage sends stdout to the journal and the serial console
# (aws ec2 get-console-output), so the log outlives a terminated instance there.
exec > >(tee -a @LOG@) 2>&1
stack='${AWS::StackName}'
region='${AWS::Region}'
token_store='${TokenStore}'
health_tries=@TRIES@
current='starting'
reason=''

signal() {
  /opt/aws/bin/cfn-signal --exit-code "$1" --reason "$2" --stack "$stack" \\
    --resource @RESOURCE@ --region "$region" || true
}

step() {
  current=$1
  echo "fednet bootstrap: $1"
}

fail() {
  reason="$current: $1"
  exit 1
}

# The first failing command (set -e) records where it failed; the exit
# signals failure with that reason, and the log tells the rest.
finish() {
  if [ "$1" -ne 0 ]; then
    [ -n "$reason" ] || reason="$current: exit $1"
    echo "fednet bootstrap failed: $reason"
    signal 1 "$reason; log: @LOG@ and the console output"
  fi
}
trap '[ -n "$reason" ] || reason="$current: exit $? at line $LINENO: $BASH_COMMAND"' ERR
trap 'finish $?' EXIT

read_secret() {
  if [ "$token_store" = secretsmanager ]; then
    aws secretsmanager get-secret-value --region "$region" --secret-id "$1" \\
      --query SecretString --output text
  else
    aws ssm get-parameter --region "$region" --name "/$1" --with-decryption \\
      --query Parameter.Value --output text
  fi
}

imds() {
  local token
  token=$(curl -fsS -X PUT http://169.254.169.254/latest/api/token \\
    -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')
  curl -fsS -H "X-aws-ec2-metadata-token: $token" \\
    "http://169.254.169.254/latest/meta-data/$1"
}

# Log in to a private ECR registry before pulling from it; others are public.
pull_image() {
  local registry ecr_region
  registry=$(cut -d/ -f1 <<<"$1")
  case $registry in
    *.dkr.ecr.*.amazonaws.com | *.dkr.ecr.*.amazonaws.com.cn)
      ecr_region=$(cut -d. -f4 <<<"$registry")
      aws ecr get-login-password --region "$ecr_region" |
        docker login --username AWS --password-stdin "$registry"
      ;;
  esac
  docker pull -q "$1"
}

# wait_ready URL [CURL OPTION...], e.g. --cacert FILE for an https URL.
wait_ready() {
  for _ in $(seq 1 "$health_tries"); do
    if curl -fsS -o /dev/null "$@"; then
      return 0
    fi
    sleep @INTERVAL@
  done
  fail "no answer from $1 after $((health_tries * @INTERVAL@)) s"
}

# cfn-signal first: without it no failure after this point could be reported.
step 'installing cfn-signal'
dnf install -y -q aws-cfn-bootstrap
step 'installing Docker'
dnf install -y -q docker@PACKAGES@
systemctl enable --now docker
install -d -m 0700 /etc/fednet
"""


def fill(text: str, values: dict[str, str]) -> str:
    """Replace each ``@KEY@`` marker of ``text`` by its value."""
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    leftover = re.findall(r"@[A-Z_]+@", text)
    if leftover:
        raise ValueError(f"unfilled user-data markers: {leftover}")
    return text


def prelude(role: str, resource: str, packages: str = "") -> str:
    """Return the common start of a script: logging, signals, helpers."""
    return fill(
        _PRELUDE,
        {
            "ROLE": role,
            "RESOURCE": resource,
            "PACKAGES": packages,
            "LOG": BOOT_LOG,
            "TRIES": str(HEALTH_TRIES),
            "INTERVAL": str(HEALTH_INTERVAL_S),
        },
    )
