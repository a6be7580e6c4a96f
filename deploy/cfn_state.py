"""The S3 bucket that keeps the coordinator's state directory across instances."""

from __future__ import annotations

from troposphere import GetAtt, Ref, Sub, Template, s3

import cfn_common as common
import cfn_userdata as userdata

NONCURRENT_VERSION_DAYS = 30
SYNC_INTERVAL_S = 30

# Restores the state directory before the coordinator starts, then installs
# the script, service and timer that save it (every 30 s and at every stop).
# `--delete` makes the copy in S3 a mirror: checkpoints the coordinator pruned
# are pruned there too (the bucket keeps them as old versions for 30 days).
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
aws s3 sync "$snap/" "$dest" --delete --region '${AWS::Region}' --only-show-errors
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

step 'restoring the state from S3'
install -d @STATE_DIR@
aws s3 sync 's3://${StateBucket}/state/' @STATE_DIR@/ \\
  --region '${AWS::Region}' --only-show-errors
"""


def state_script() -> str:
    """Return the coordinator's user-data part that restores and saves state."""
    return userdata.fill(
        _STATE_SAVE, {"STATE_DIR": userdata.STATE_DIR, "SYNC": str(SYNC_INTERVAL_S)}
    )


def add_state_bucket(t: Template) -> s3.Bucket:
    """Add the versioned, encrypted, private bucket of the coordinator's state."""
    bucket = t.add_resource(
        s3.Bucket(
            "StateBucket",
            Metadata=common.skip_checks(
                (
                    "CKV_AWS_18",
                    "Access logs of a bucket only the coordinator writes add cost, "
                    "not insight; CloudTrail records its API calls",
                ),
            ),
            DeletionPolicy="Retain",
            UpdateReplacePolicy="Retain",
            VersioningConfiguration=s3.VersioningConfiguration(Status="Enabled"),
            BucketEncryption=s3.BucketEncryption(
                ServerSideEncryptionConfiguration=[
                    s3.ServerSideEncryptionRule(
                        BucketKeyEnabled=True,
                        ServerSideEncryptionByDefault=s3.ServerSideEncryptionByDefault(
                            SSEAlgorithm="aws:kms"
                        ),
                    )
                ]
            ),
            PublicAccessBlockConfiguration=s3.PublicAccessBlockConfiguration(
                BlockPublicAcls=True,
                BlockPublicPolicy=True,
                IgnorePublicAcls=True,
                RestrictPublicBuckets=True,
            ),
            OwnershipControls=s3.OwnershipControls(
                Rules=[s3.OwnershipControlsRule(ObjectOwnership="BucketOwnerEnforced")]
            ),
            LifecycleConfiguration=s3.LifecycleConfiguration(
                Rules=[
                    s3.LifecycleRule(
                        Id="ExpireOldStateVersions",
                        Status="Enabled",
                        NoncurrentVersionExpiration=s3.NoncurrentVersionExpiration(
                            NoncurrentDays=NONCURRENT_VERSION_DAYS
                        ),
                    )
                ]
            ),
            Tags=common.name_tags("state"),
        )
    )
    t.add_resource(
        s3.BucketPolicy(
            "StateBucketPolicy",
            Bucket=Ref(bucket),
            PolicyDocument={
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [
                            GetAtt(bucket, "Arn"),
                            Sub("${StateBucket.Arn}/*"),
                        ],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                ],
            },
        )
    )
    return bucket


def state_bucket_statements(bucket: s3.Bucket) -> list[object]:
    """Return the coordinator's permissions on its state bucket, and no other."""
    return [
        {
            "Sid": "ListStateBucket",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [GetAtt(bucket, "Arn")],
            "Condition": {"StringLike": {"s3:prefix": ["state/", "state/*"]}},
        },
        {
            "Sid": "ReadWriteState",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "Resource": [Sub("${StateBucket.Arn}/state/*")],
        },
    ]
