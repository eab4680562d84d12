#!/usr/bin/env bash
# spot-interrupt.sh INSTANCE_ID [DURATION]: send one EC2 spot instance the
# interruption notice through AWS FIS (aws:ec2:send-spot-instance-interruptions);
# the instance is interrupted DURATION later (ISO 8601, default PT2M, what
# AWS gives). Needs FIS_ROLE_ARN: a role FIS assumes, allowed
# ec2:SendSpotInstanceInterruptions and ec2:DescribeInstances. Prints the
# experiment ID; the template is tagged vaultstorm=spot-interrupt for cleanup.
set -euo pipefail
id="${1:?usage: spot-interrupt.sh INSTANCE_ID [DURATION]}"
duration="${2:-PT2M}"
: "${FIS_ROLE_ARN:?set FIS_ROLE_ARN to the role FIS assumes}"
case "$id" in i-[0-9a-f]*) ;; *) echo "spot-interrupt.sh: $id is not an instance ID" >&2; exit 2 ;; esac

region="$(aws configure get region || true)"
region="${AWS_REGION:-${region:?set AWS_REGION}}"
account="$(aws sts get-caller-identity --query Account --output text)"
arn="arn:aws:ec2:${region}:${account}:instance/${id}"

template="$(aws fis create-experiment-template \
  --tags vaultstorm=spot-interrupt \
  --cli-input-json "$(cat <<JSON
{
  "description": "vaultstorm: spot interruption notice for ${id}",
  "targets": {"node": {"resourceType": "aws:ec2:spot-instance", "resourceArns": ["${arn}"], "selectionMode": "ALL"}},
  "actions": {"interrupt": {"actionId": "aws:ec2:send-spot-instance-interruptions",
    "parameters": {"durationBeforeInterruption": "${duration}"}, "targets": {"SpotInstances": "node"}}},
  "stopConditions": [{"source": "none"}],
  "roleArn": "${FIS_ROLE_ARN}"
}
JSON
)" --query experimentTemplate.id --output text)"
aws fis start-experiment --experiment-template-id "$template" --tags vaultstorm=spot-interrupt --query experiment.id --output text
