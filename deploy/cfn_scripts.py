"""Bash user-data scripts of the fednet instances, as Fn::Sub bodies.

Tokens never appear here: the instance reads them at boot with its instance
profile and writes them to a root-only env file.

The coordinator serves https and wss (fednet refuses 0.0.0.0 without TLS and
an admin token): at boot it makes a private CA and a certificate for its
private address with ``fednet ca``, and drops the CA's key. A load balancer
does not verify a target's certificate; a client that dials the coordinator
directly (the simple stack) verifies it with the CA certificate, which the
coordinator publishes in an SSM parameter.
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

TLS_DIR = "/etc/fednet/tls"  # on the coordinator: its CA folder, ca/
CERTS = "/certs"  # where the container sees TLS_DIR (then TLS_DIR/ca)
TRUST_DIR = "/etc/fednet/trust"  # on a client: the coordinator's CA certificate

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
FEDNET_TLS_CERT=@CERTS@/server.crt
FEDNET_TLS_KEY=@CERTS@/server.key
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

step 'making the coordinator certificate'
address=$(imds local-ipv4)
install -d -m 0700 @TLS_DIR@
chown "$owner" @TLS_DIR@
run_fednet() {
  docker run --rm --network none --entrypoint fednet -v @TLS_DIR@:@CERTS@ \\
    "$image" "$@"
}
run_fednet ca init @CERTS@/ca >/dev/null
run_fednet ca issue @CERTS@/ca server --san "$address" --san localhost \\
  --san 127.0.0.1 >/dev/null
# Nothing is issued after boot: the CA's key is not kept.
rm -f @TLS_DIR@/ca/ca.key
@PUBLISH_CA@
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
  -v @TLS_DIR@/ca:@CERTS@:ro -v @STATE_DIR@:@STATE_DIR@ ${ServerImage}
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
wait_ready https://127.0.0.1:@SERVER_PORT@/healthz --cacert @TLS_DIR@/ca/ca.crt
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
@CA_ENV@$data_env
EOF
umask 022
unset join_token
@FETCH_CA@step "pulling $image"
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
  -v @DATA_DIR@:/data:ro @CA_MOUNT@${ClientImage}
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


_PUBLISH_CA = """step 'publishing the CA certificate'
aws ssm put-parameter --region "$region" --name '@PARAMETER@' --type String \\
  --overwrite --value file://@TLS_DIR@/ca/ca.crt >/dev/null
"""

_FETCH_CA = """step 'reading the coordinator CA certificate'
install -d -m 0755 @TRUST_DIR@
aws ssm get-parameter --region "$region" --name '@PARAMETER@' \\
  --query Parameter.Value --output text >@TRUST_DIR@/ca.crt
grep -q 'BEGIN CERTIFICATE' @TRUST_DIR@/ca.crt ||
  fail 'no CA certificate in @PARAMETER@'
"""


def _publish(port: int, extra_port: int | None) -> str:
    """Return the ``-p`` flags mapping the container port (and ``extra_port``)."""
    flags = f"-p {port}:{port} "
    if extra_port is not None:
        flags = f"-p {extra_port}:{port} " + flags
    return flags


def server_script(
    resource: str, *, publish_https: bool, state: str = "", ca_parameter: str = ""
) -> str:
    """Return the coordinator's user data as an Fn::Sub body.

    Args:
        resource: Logical ID that receives the cfn-signal (instance or group).
        publish_https: Also publish the dashboard (https) on host port 443.
        state: Script part restoring the state directory and installing its
            periodic save (``cfn_state.STATE_SAVE``); empty for none.
        ca_parameter: Name (may hold ``${...}``) of the SSM parameter that
            receives the CA certificate, for clients that dial the instance;
            empty for none (behind a load balancer).

    Returns:
        The bash script, with CloudFormation ``${...}`` placeholders.
    """
    publish_ca = ""
    if ca_parameter:
        publish_ca = fill(_PUBLISH_CA, {"PARAMETER": ca_parameter, "TLS_DIR": TLS_DIR})
    body = fill(
        _SERVER_ENV + state + _SERVER_UNIT,
        {
            "SERVER_PORT": str(SERVER_PORT),
            "STATE_DIR": STATE_DIR,
            "TLS_DIR": TLS_DIR,
            "CERTS": CERTS,
            "PUBLISH_CA": publish_ca,
            "PUBLISH": _publish(SERVER_PORT, 443 if publish_https else None),
            "STOP_POST": (
                "ExecStopPost=/usr/local/bin/fednet-state-save\n" if state else ""
            ),
            "TIMER": " fednet-state-save.timer" if state else "",
        },
    )
    return prelude("coordinator", resource, " sqlite" if state else "") + body


def client_script(
    resource: str,
    *,
    server_url: str,
    publish_http: bool,
    partition: str,
    ca_parameter: str = "",
) -> str:
    """Return a client's user data as an Fn::Sub body.

    Args:
        resource: Logical ID that receives the cfn-signal (instance or group).
        server_url: The coordinator's WebSocket URL (may hold ``${...}``).
        publish_http: Also publish the status page on host port 80.
        partition: Bash lines that set ``partition`` to this client's ``i/n``
            slice of a built-in data set.
        ca_parameter: Name of the SSM parameter holding the coordinator's CA
            certificate, for a ``wss://`` URL to the instance itself; empty
            when a load balancer is dialled.

    Returns:
        The bash script, with CloudFormation ``${...}`` placeholders.
    """
    values = {"PARAMETER": ca_parameter, "TRUST_DIR": TRUST_DIR}
    body = fill(
        _CLIENT_BODY,
        {
            "SERVER_URL": server_url,
            "CLIENT_PORT": str(CLIENT_PORT),
            "DATA_DIR": DATA_DIR,
            "PUBLISH": _publish(CLIENT_PORT, 80 if publish_http else None),
            "PARTITION": partition,
            "CA_ENV": "FEDNET_CA_FILE=/trust/ca.crt\n" if ca_parameter else "",
            "FETCH_CA": fill(_FETCH_CA, values) if ca_parameter else "",
            "CA_MOUNT": f"-v {TRUST_DIR}:/trust:ro " if ca_parameter else "",
        },
    )
    return prelude("client", resource) + body
