name        = "aws-spot-reclaim"
description = "One spot instance of the staging Vault gets AWS's real 2-minute interruption notice (FIS); when it ends the instance is gone with its instance-store RAID0, the autoscaling group's replacement joins by cloud auto-join and auto-unseals, and autopilot removes the dead peer, all under load."

cluster {
  provider  = "external"
  inventory = "inventory.hcl" # relative to this file
  nodes     = 5               # the voters the cluster must have: another count is refused
}

load {
  rate     = 200
  duration = "20m"
  target   = "active"
}

fault "spot_reclaim" {
  at     = "2m"
  target = "random"
  # The inventory's notice command runs at 2m on the chosen node (FIS sends
  # the notice and interrupts the instance itself 2 minutes later); its
  # reclaim command (terminate-instances) runs when the notice ends.
  notice = "2m"
  # From 1m after the loss the run waits (up to 10 minutes) for a raft peer
  # it has not seen: the group's replacement.
  replace_after = "1m"
}

expect {
  leader_within      = "10s"
  max_unavailability = "15s"
  healed_within      = "12m"
  min_voters_after   = 5
  dead_peers_removed = true
  lost_writes        = 0
  linearizable       = true
}
