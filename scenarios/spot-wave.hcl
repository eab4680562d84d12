name        = "spot-wave"
description = "A reclaim wave takes two spot instances at once: five voters survive two losses, so quorum holds, and both replacements must join and the dead peers be removed."

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
  count         = 2
  notice        = "2m"
  replace_after = "30s"
}

expect {
  leader_within      = "10s"
  max_unavailability = "15s"
  healed_within      = "3m"
  min_voters_after   = 5
  dead_peers_removed = true
  lost_writes        = 0
  linearizable       = true
}
