# spot-reclaim (synthetic)
name = "spot-reclaim"

cluster {
  nodes = 5
}

load {
  rate     = 200
  duration = "120s"
}

fault "spot_reclaim" {
  at     = "30s"
  target = "node3"
}

fault "kill" {
  at     = "1m10s"
  target = "node1"
}

expect {
  max_unavailability = "10s"
  lost_writes        = 0
  healed_within      = "60s"
  leader_within      = "10s"
  p99_during_fault   = "5s"
  min_voters_after   = 5
  dead_peers_removed = true
  linearizable       = true
}
