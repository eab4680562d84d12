# quorum-loss (synthetic)
name = "quorum-loss"

cluster {
  nodes = 5
}

load {
  rate     = 200
  duration = "60s"
}

fault "kill" {
  at     = "20s"
  target = "node1,node2,node3"
}

expect {
  max_unavailability = "10s"
  lost_writes        = 0
  healed_within      = "60s"
  leader_within      = "10s"
  p99_during_fault   = "5s"
  min_voters_after   = 5
  dead_peers_removed = true
}
