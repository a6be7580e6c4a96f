"""Per-instance data slices of the complex stack's client group.

Every client of the group trains on its own slice ``i/ClientCount`` of the
built-in data set: slot ``i`` is the lowest one no other live client of the
group holds (EC2 tag ``fednet:slot``). Clients booting together, none tagged
yet, take the free slots in the order of their instance IDs, so they agree
without talking to each other.
"""

from __future__ import annotations

from troposphere import Sub

SLOT_TAG = "fednet:slot"

# A user-data part (Fn::Sub body): needs $name (instance ID) and $region.
SLOT_SCRIPT = """count='${ClientCount}'
group=$(aws autoscaling describe-auto-scaling-instances --region "$region" \\
  --instance-ids "$name" --output text \\
  --query 'AutoScalingInstances[0].AutoScalingGroupName')
peers=$(aws autoscaling describe-auto-scaling-groups --region "$region" \\
  --auto-scaling-group-names "$group" --output text --query \\
  "AutoScalingGroups[0].Instances[?LifecycleState=='InService' \\
|| starts_with(LifecycleState, 'Pending')].InstanceId")
peer_ids=$(tr -s '[:space:]' ',' <<<"$peers" | sed 's/^,//; s/,$//')
held=$(aws ec2 describe-tags --region "$region" --output text \\
  --filters Name=key,Values=@TAG@ "Name=resource-id,Values=$peer_ids" \\
  --query 'Tags[].[ResourceId,Value]')
slot=$(awk -v me="$name" -v n="$count" -v peers="$peers" '
  NF == 2 && $1 != me { taken[$2] = 1; tagged[$1] = 1 }
  END {
    k = split(peers, ids, /[ \\t\\n]+/)
    rank = 0
    for (i = 1; i <= k; i++)
      if (ids[i] != "" && ids[i] < me && !(ids[i] in tagged)) rank++
    for (s = 1; s <= n; s++)
      if (!(s in taken)) { if (rank == 0) { print s; exit } rank-- }
    print 1 + k % n
  }' <<<"$held")
aws ec2 create-tags --region "$region" --resources "$name" \\
  --tags "Key=@TAG@,Value=$slot"
partition="$slot/$count"
""".replace(
    "@TAG@", SLOT_TAG
)


def slot_statements() -> list[object]:
    """Return the client role's permissions to find and claim its slot."""
    return [
        {
            "Sid": "FindPeers",
            "Effect": "Allow",
            # These read-only actions support no resource-level permissions.
            "Action": [
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeAutoScalingInstances",
                "ec2:DescribeTags",
            ],
            "Resource": ["*"],
        },
        {
            "Sid": "ClaimSlot",
            "Effect": "Allow",
            "Action": ["ec2:CreateTags"],
            "Resource": [
                Sub(
                    "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}"
                    ":instance/*"
                )
            ],
            "Condition": {
                "ForAllValues:StringEquals": {"aws:TagKeys": [SLOT_TAG]},
                "StringEquals": {"aws:ResourceTag/Project": "fednet"},
            },
        },
    ]
