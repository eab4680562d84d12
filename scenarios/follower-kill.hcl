name        = "follower-kill"
description = "SIGKILL one standby under load, restart it 20s later; the leader and the write path must not notice."

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

fault "kill" {
  at            = "30s"
  target        = "follower"
  restart_after = "20s"
}

expect {
  new_leader         = false
  max_unavailability = "2s"
  healed_within      = "1m"
  min_voters_after   = 5
  lost_writes        = 0
  linearizable       = true
}
