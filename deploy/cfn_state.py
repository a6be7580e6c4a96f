"""The S3 bucket that keeps the coordinator's state directory across instances."""

from __future__ import annotations

from troposphere import GetAtt, Ref, Sub, Template, s3

import cfn_common as common

NONCURRENT_VERSION_DAYS = 30


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
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": [Sub("${StateBucket.Arn}/state/*")],
        },
    ]
