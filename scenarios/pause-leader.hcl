name        = "pause-leader"
description = "SIGSTOP the active node for 15s (a stalled VM or a long GC pause), then SIGCONT: the others elect a new leader and the old one must step down and rejoin."

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

fault "pause" {
  at       = "30s"
  target   = "leader"
  duration = "15s"
}

expect {
  leader_within      = "10s"
  new_leader         = true
  max_unavailability = "15s"
  healed_within      = "1m"
  min_voters_after   = 5
  lost_writes        = 0
  linearizable       = true
}
