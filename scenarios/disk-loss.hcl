name        = "disk-loss"
description = "One member disk of a standby's RAID0 array fails: RAID0 has no redundancy, so the node's whole data set is gone and the node is replaced with fresh disks."

cluster {
  nodes                  = 5
  zones                  = 3
  storage                = "raid0"
  disks_per_node         = 2
  performance_multiplier = 1
}

load {
  rate     = 100 # what a 2-core machine with five nodes sustains with a valid generator; run --rate for more
  duration = "4m"
  target   = "active"
}

fault "disk_loss" {
  at            = "1m"
  target        = "follower"
  disk          = 1
  replace_after = "30s"
}

expect {
  new_leader         = false
  max_unavailability = "2s"
  healed_within      = "2m30s"
  min_voters_after   = 5
  dead_peers_removed = true
  lost_writes        = 0
  linearizable       = true
}
