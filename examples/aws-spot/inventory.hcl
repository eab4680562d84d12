# A five-node Vault on EC2 spot instances (raft on instance-store RAID0,
# auto-unsealed by AWS KMS), as vaultstorm drives it: nodes are read from
# Vault itself (raft configuration and sys/ha-status), faults are the
# commands below. See README.md for the IAM permissions they need.
#
#   vaultstorm status --inventory examples/aws-spot/inventory.hcl
#   vaultstorm node notice vault-i-0abc --inventory examples/aws-spot/inventory.hcl --dry-run

# sys/health's cluster_name: vaultstorm refuses a cluster with another one,
# so an address pointing at the wrong environment kills nothing.
cluster_name = "vault-staging"

# Where discovery starts; any node will do (a standby forwards to the
# active node). The rest come from the cluster.
addresses = ["https://vault.staging.internal:8200"]

# The root of the cfssl root -> intermediate chain the listeners use,
# relative to this file. TLS is always verified.
ca_file = "ca.pem"

# A token that may read sys/ha-status, sys/storage/raft/configuration and
# autopilot, and read/write the load's KV mount (see README.md).
token_env = "VAULT_TOKEN"

# An AWS API call or an SSM command returns in seconds; give up after this.
command_timeout = "3m"

commands {
  # Process-level faults go through SSM Run Command: the instance and its
  # instance-store RAID0 stay.
  kill   = "aws ssm send-command --instance-ids {{.InstanceID}} --document-name AWS-RunShellScript --parameters 'commands=[\"systemctl kill -s KILL vault\"]'"
  stop   = "aws ssm send-command --instance-ids {{.InstanceID}} --document-name AWS-RunShellScript --parameters 'commands=[\"systemctl stop vault\"]'"
  start  = "aws ssm send-command --instance-ids {{.InstanceID}} --document-name AWS-RunShellScript --parameters 'commands=[\"systemctl start vault\"]'"
  pause  = "aws ssm send-command --instance-ids {{.InstanceID}} --document-name AWS-RunShellScript --parameters 'commands=[\"systemctl kill -s STOP vault\"]'"
  resume = "aws ssm send-command --instance-ids {{.InstanceID}} --document-name AWS-RunShellScript --parameters 'commands=[\"systemctl kill -s CONT vault\"]'"

  # Cut the node off from its peers' raft traffic (the cluster port);
  # clients still reach its API, as in a real split.
  partition = "aws ssm send-command --instance-ids {{.InstanceID}} --document-name AWS-RunShellScript --parameters 'commands=[\"iptables -I INPUT -p tcp --dport 8201 -j DROP\",\"iptables -I OUTPUT -p tcp --dport 8201 -j DROP\"]'"
  heal      = "aws ssm send-command --instance-ids {{.InstanceID}} --document-name AWS-RunShellScript --parameters 'commands=[\"iptables -D INPUT -p tcp --dport 8201 -j DROP\",\"iptables -D OUTPUT -p tcp --dport 8201 -j DROP\"]'"

  # The real thing: AWS FIS sends the spot interruption notice, and the
  # instance is interrupted 2 minutes later (durationBeforeInterruption).
  # The autoscaling group launches the replacement; it joins by cloud
  # auto-join and vaultstorm finds it in the raft configuration.
  notice = "examples/aws-spot/spot-interrupt.sh {{.InstanceID}} PT2M"

  # An instance gone without notice, its instance store with it.
  reclaim = "aws ec2 terminate-instances --instance-ids {{.InstanceID}}"
}

# {{.InstanceID}} is the node's raft node_id unless a node block says
# otherwise. Setting Vault's node_id to the instance ID at boot (from the
# instance metadata) makes replacements the autoscaling group launches
# addressable with no edit here. Otherwise, name each node:
#
# node "vault-1" {
#   instance_id = "i-0123456789abcdef0"
#   zone        = "eu-west-1a"
# }
