"""Bash user-data scripts of the fednet instances, as Fn::Sub bodies.

Tokens never appear here: the instance reads them at boot with its instance
profile and writes them to a root-only env file.
"""

from __future__ import annotations

from cfn_userdata import (
    CLIENT_PORT,
    DATA_DIR,
    SERVER_PORT,
    STATE_DIR,
    fill,
    prelude,
)

_SERVER_ENV = """
step 'reading the tokens'
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

_SERVER_UNIT = """
step "pulling $image"
pull_image "$image"
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

step 'starting the coordinator'
systemctl daemon-reload
systemctl enable --now fednet-server.service@TIMER@
step 'waiting for the coordinator to answer'
wait_ready http://127.0.0.1:@SERVER_PORT@/healthz
signal 0 'coordinator healthy'
"""

_CLIENT_BODY = """
step 'reading the data settings and the token'
image='${ClientImage}'
dataset='${ClientDataset}'
name=$(imds instance-id)
@PARTITION@join_token=$(read_secret '${JoinTokenName}')
install -d @DATA_DIR@
if [ "$dataset" = csv ]; then
  aws s3 cp 's3://${ClientDataBucket}/${ClientDataKey}' @DATA_DIR@/data.csv \\
    --region "$region" --only-show-errors
  chmod 0644 @DATA_DIR@/data.csv
  data_env="FEDNET_DATA=/data/data.csv
FEDNET_LABEL_COLUMN=${ClientLabelColumn}"
else
  data_env="FEDNET_DATASET=$dataset
FEDNET_PARTITION=$partition"
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
step "pulling $image"
pull_image "$image"

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

step 'starting the client'
systemctl daemon-reload
systemctl enable --now fednet-client.service
step 'waiting for the coordinator to welcome the client'
# /readyz answers 200 only once the coordinator has welcomed this client.
wait_ready http://127.0.0.1:@CLIENT_PORT@/readyz
signal 0 'client connected to the coordinator'
"""


def _publish(port: int, publish_http: bool) -> str:
    """Return the ``-p`` flags mapping the container port (and port 80)."""
    flags = f"-p {port}:{port} "
    if publish_http:
        flags = f"-p 80:{port} " + flags
    return flags


def server_script(resource: str, *, publish_http: bool, state: str = "") -> str:
    """Return the coordinator's user data as an Fn::Sub body.

    Args:
        resource: Logical ID that receives the cfn-signal (instance or group).
        publish_http: Also publish the dashboard on host port 80.
        state: Script part restoring the state directory and installing its
            periodic save (``cfn_state.STATE_SAVE``); empty for none.

    Returns:
        The bash script, with CloudFormation ``${...}`` placeholders.
    """
    body = fill(
        _SERVER_ENV + state + _SERVER_UNIT,
        {
            "SERVER_PORT": str(SERVER_PORT),
            "STATE_DIR": STATE_DIR,
            "PUBLISH": _publish(SERVER_PORT, publish_http),
            "STOP_POST": (
                "ExecStopPost=/usr/local/bin/fednet-state-save\n" if state else ""
            ),
            "TIMER": " fednet-state-save.timer" if state else "",
        },
    )
    return prelude("coordinator", resource, " sqlite" if state else "") + body


def client_script(
    resource: str, *, server_url: str, publish_http: bool, partition: str
) -> str:
    """Return a client's user data as an Fn::Sub body.

    Args:
        resource: Logical ID that receives the cfn-signal (instance or group).
        server_url: The coordinator's WebSocket URL (may hold ``${...}``).
        publish_http: Also publish the status page on host port 80.
        partition: Bash lines that set ``partition`` to this client's ``i/n``
            slice of a built-in data set.

    Returns:
        The bash script, with CloudFormation ``${...}`` placeholders.
    """
    body = fill(
        _CLIENT_BODY,
        {
            "SERVER_URL": server_url,
            "CLIENT_PORT": str(CLIENT_PORT),
            "DATA_DIR": DATA_DIR,
            "PUBLISH": _publish(CLIENT_PORT, publish_http),
            "PARTITION": partition,
        },
    )
    return prelude("client", resource) + body
