"""Bash user-data scripts of the fednet instances, as Fn::Sub bodies.

``${Name}`` is substituted by CloudFormation; bash variables use the ``$name``
form only. Tokens never appear here: the instance reads them at boot with its
instance profile and writes them to a root-only env file.
"""

from __future__ import annotations

import re

SERVER_PORT = 5000
CLIENT_PORT = 5001
STATE_DIR = "/var/lib/fednet"
DATA_DIR = "/var/lib/fednet-data"
SYNC_INTERVAL_S = 30

_PRELUDE = """#!/bin/bash
# fednet @ROLE@ bootstrap for Amazon Linux 2023, rendered by CloudFormation.
set -Eeuo pipefail
exec >>/var/log/fednet-bootstrap.log 2>&1
stack='${AWS::StackName}'
region='${AWS::Region}'
token_store='${TokenStore}'

signal() {
  /opt/aws/bin/cfn-signal --exit-code "$1" --stack "$stack" \\
    --resource @RESOURCE@ --region "$region" || true
}
trap 'signal 1' ERR

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

wait_healthy() {
  for _ in $(seq 1 60); do
    if curl -fsS -o /dev/null "$1"; then
      return 0
    fi
    sleep 5
  done
  return 1
}

dnf install -y -q docker aws-cfn-bootstrap@PACKAGES@
systemctl enable --now docker
install -d -m 0700 /etc/fednet
"""

_SERVER_ENV = """
image='${ServerImage}'
join_token=$(read_secret '${JoinTokenName}')
admin_token=$(read_secret '${AdminTokenName}')
umask 077
cat >/etc/fednet/server.env <<EOF
FEDNET_HOST=0.0.0.0
FEDNET_PORT=@SERVER_PORT@
FEDNET_STATE_DIR=@STATE_DIR@
FEDNET_LOG_FORMAT=json
FEDNET_JOIN_TOKEN=$join_token
FEDNET_ADMIN_TOKEN=$admin_token
EOF
umask 022
unset join_token admin_token
"""

_STATE_SAVE = """
cat >/usr/local/bin/fednet-state-save <<'EOF'
#!/bin/bash
# Copy a consistent snapshot of the coordinator state directory to S3.
set -euo pipefail
src=@STATE_DIR@
snap=/var/lib/fednet-snapshot
dest='s3://${StateBucket}/state/'
exec 9>/run/fednet-state-save.lock
flock 9
if [ -z "$(ls -A "$src" 2>/dev/null)" ]; then
  exit 0
fi
rm -rf "$snap"
mkdir -p "$snap"
for path in "$src"/*; do
  name=$(basename "$path")
  case "$name" in
    *-wal | *-shm | *-journal) ;;
    *.db | *.sqlite | *.sqlite3) sqlite3 "$path" ".backup '$snap/$name'" ;;
    *) cp -a "$path" "$snap/" ;;
  esac
done
aws s3 sync "$snap/" "$dest" --region '${AWS::Region}' --only-show-errors
EOF
chmod 0755 /usr/local/bin/fednet-state-save

cat >/etc/systemd/system/fednet-state-save.service <<'EOF'
[Unit]
Description=Save the fednet coordinator state to S3

[Service]
Type=oneshot
ExecStart=/usr/local/bin/fednet-state-save
EOF

cat >/etc/systemd/system/fednet-state-save.timer <<'EOF'
[Unit]
Description=Save the fednet coordinator state to S3 every @SYNC@ s

[Timer]
OnActiveSec=@SYNC@s
OnUnitActiveSec=@SYNC@s
AccuracySec=5s

[Install]
WantedBy=timers.target
EOF

install -d @STATE_DIR@
aws s3 sync 's3://${StateBucket}/state/' @STATE_DIR@/ \\
  --region '${AWS::Region}' --only-show-errors
"""

_SERVER_UNIT = """
docker pull -q "$image"
owner="$(docker run --rm --entrypoint id "$image" -u):$(docker run --rm \\
  --entrypoint id "$image" -g)"
install -d @STATE_DIR@
chown -R "$owner" @STATE_DIR@

cat >/etc/systemd/system/fednet-server.service <<'EOF'
[Unit]
Description=fednet coordinator container
Requires=docker.service
Wants=network-online.target
After=docker.service network-online.target

[Service]
ExecStartPre=-/usr/bin/docker rm -f fednet-server
ExecStart=/usr/bin/docker run --rm --name fednet-server \\
  --env-file /etc/fednet/server.env @PUBLISH@\\
  -v @STATE_DIR@:@STATE_DIR@ ${ServerImage}
ExecStop=/usr/bin/docker stop --time 20 fednet-server
@STOP_POST@Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
EOF

systemctl daemon-reload
systemctl enable --now fednet-server.service@TIMER@
wait_healthy http://127.0.0.1:@SERVER_PORT@/healthz
signal 0
"""

_CLIENT_BODY = """
image='${ClientImage}'
dataset='${ClientDataset}'
name=$(imds instance-id)
join_token=$(read_secret '${JoinTokenName}')
install -d @DATA_DIR@
if [ "$dataset" = csv ]; then
  aws s3 cp 's3://${ClientDataBucket}/${ClientDataKey}' @DATA_DIR@/data.csv \\
    --region "$region" --only-show-errors
  chmod 0644 @DATA_DIR@/data.csv
  data_env="FEDNET_DATA=/data/data.csv
FEDNET_LABEL_COLUMN=${ClientLabelColumn}"
else
  data_env="FEDNET_DATASET=$dataset
FEDNET_PARTITION=${ClientPartition}"
fi
umask 077
cat >/etc/fednet/client.env <<EOF
FEDNET_SERVER=@SERVER_URL@
FEDNET_NAME=$name
FEDNET_CLIENT_PORT=@CLIENT_PORT@
FEDNET_LOG_FORMAT=json
FEDNET_JOIN_TOKEN=$join_token
$data_env
EOF
umask 022
unset join_token
docker pull -q "$image"

cat >/etc/systemd/system/fednet-client.service <<'EOF'
[Unit]
Description=fednet client container
Requires=docker.service
Wants=network-online.target
After=docker.service network-online.target

[Service]
ExecStartPre=-/usr/bin/docker rm -f fednet-client
ExecStart=/usr/bin/docker run --rm --name fednet-client \\
  --env-file /etc/fednet/client.env @PUBLISH@\\
  -v @DATA_DIR@:/data:ro ${ClientImage}
ExecStop=/usr/bin/docker stop --time 20 fednet-client
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
EOF

systemctl daemon-reload
systemctl enable --now fednet-client.service
wait_healthy http://127.0.0.1:@CLIENT_PORT@/healthz
signal 0
"""


def _fill(text: str, values: dict[str, str]) -> str:
    """Replace each ``@KEY@`` marker of ``text`` by its value."""
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    leftover = re.findall(r"@[A-Z_]+@", text)
    if leftover:
        raise ValueError(f"unfilled user-data markers: {leftover}")
    return text


def _publish(port: int, publish_http: bool) -> str:
    """Return the ``-p`` flags mapping the container port (and port 80)."""
    flags = f"-p {port}:{port} "
    if publish_http:
        flags = f"-p 80:{port} " + flags
    return flags


def server_script(resource: str, *, publish_http: bool, state_bucket: bool) -> str:
    """Return the coordinator's user data as an Fn::Sub body.

    Args:
        resource: Logical ID that receives the cfn-signal (instance or group).
        publish_http: Also publish the dashboard on host port 80.
        state_bucket: Restore the state directory from ``${StateBucket}`` at
            boot and save it there every 30 s and when the container stops.

    Returns:
        The bash script, with CloudFormation ``${...}`` placeholders.
    """
    parts = [_PRELUDE, _SERVER_ENV]
    if state_bucket:
        parts.append(_STATE_SAVE)
    parts.append(_SERVER_UNIT)
    return _fill(
        "".join(parts),
        {
            "ROLE": "coordinator",
            "PACKAGES": " sqlite" if state_bucket else "",
            "RESOURCE": resource,
            "SERVER_PORT": str(SERVER_PORT),
            "STATE_DIR": STATE_DIR,
            "SYNC": str(SYNC_INTERVAL_S),
            "PUBLISH": _publish(SERVER_PORT, publish_http),
            "STOP_POST": (
                "ExecStopPost=/usr/local/bin/fednet-state-save\n"
                if state_bucket
                else ""
            ),
            "TIMER": " fednet-state-save.timer" if state_bucket else "",
        },
    )


def client_script(resource: str, *, server_url: str, publish_http: bool) -> str:
    """Return a client's user data as an Fn::Sub body.

    Args:
        resource: Logical ID that receives the cfn-signal (instance or group).
        server_url: The coordinator's WebSocket URL (may hold ``${...}``).
        publish_http: Also publish the status page on host port 80.

    Returns:
        The bash script, with CloudFormation ``${...}`` placeholders.
    """
    return _fill(
        _PRELUDE + _CLIENT_BODY,
        {
            "ROLE": "client",
            "PACKAGES": "",
            "RESOURCE": resource,
            "SERVER_URL": server_url,
            "CLIENT_PORT": str(CLIENT_PORT),
            "DATA_DIR": DATA_DIR,
            "PUBLISH": _publish(CLIENT_PORT, publish_http),
        },
    )
