name        = "partition-leader"
description = "Cut the active node off from its peers for 30s (packets dropped, as in a real network split): the majority side elects a new leader, the old one steps down, and rejoins as a follower after the heal."

cluster {
  nodes                  = 5
  zones                  = 3
  performance_multiplier = 1
}

load {
  rate     = 100 # what a 2-core machine with five nodes sustains with a valid generator; run --rate for more
  duration = "2m"
  target   = "active"
}

fault "partition" {
  at       = "30s"
  target   = "leader"
  duration = "30s"
}

expect {
  leader_within      = "10s"
  new_leader         = true
  max_unavailability = "15s"
  healed_within      = "1m30s"
  min_voters_after   = 5
  lost_writes        = 0
  linearizable       = true
}
