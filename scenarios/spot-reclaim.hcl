name        = "spot-reclaim"
description = "One spot instance reclaimed: 2m interruption notice, then the node and its RAID0 disks are gone; a replacement with empty disks joins, auto-unseals, and autopilot removes the dead peer."

cluster {
  nodes                  = 5
  zones                  = 3
  performance_multiplier = 1
}

load {
  rate     = 100 # what a 2-core machine with five nodes sustains with a valid generator; run --rate for more
  duration = "6m"
  target   = "active"
}

fault "spot_reclaim" {
  at            = "1m"
  target        = "random"
  notice        = "2m" # what AWS gives
  replace_after = "30s"
}

expect {
  # Counted only if the reclaimed node was the leader.
  leader_within      = "10s"
  max_unavailability = "15s"
  # Autopilot removes a dead server no sooner than 1m after its last contact
  # (Vault's minimum dead_server_last_contact_threshold).
  healed_within      = "2m30s"
  min_voters_after   = 5
  dead_peers_removed = true
  lost_writes        = 0
  linearizable       = true
}
