name        = "rolling-restart"
description = "Restart every node in turn with SIGTERM, standbys first and the active node last, waiting for the cluster to heal in between: the shape of an upgrade."

cluster {
  nodes                  = 5
  zones                  = 3
  performance_multiplier = 1
}

load {
  rate     = 100 # what a 2-core machine with five nodes sustains with a valid generator; run --rate for more
  duration = "5m"
  target   = "active"
}

fault "rolling_restart" {
  at           = "30s"
  wait_healthy = true
  leader_last  = true
  signal       = "stop"
  timeout      = "2m" # per node
}

expect {
  new_leader         = true # the active node's own restart moves leadership
  max_unavailability = "15s"
  healed_within      = "4m"
  min_voters_after   = 5
  lost_writes        = 0
  linearizable       = true
}
