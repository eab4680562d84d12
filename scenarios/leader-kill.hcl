name        = "leader-kill"
description = "SIGKILL the active node under load, restart it 20s later; a new leader must be elected within the raft election timeout plus slack."

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
  target        = "leader"
  restart_after = "20s"
}

expect {
  # Followers call an election after 1-2 heartbeat timeouts (1s each at
  # performance_multiplier 1); the winner then takes over as active node.
  leader_within      = "10s"
  new_leader         = true
  max_unavailability = "15s"
  healed_within      = "1m"
  min_voters_after   = 5
  lost_writes        = 0
  linearizable       = true
}
