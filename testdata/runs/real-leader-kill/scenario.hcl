# time scale 0.1
# expect healed_within: 1m0s × 0.1 = 6s raised to 30s (floor, see scenarios.Min*)
name        = "leader-kill"
description = "SIGKILL the active node under load, restart it 20s later; a new leader must be elected within the raft election timeout plus slack."
seed        = 42

cluster {
  nodes                  = 5
  provider               = "process"
  storage                = "raid0"
  disk_size              = "256MiB"
  disks_per_node         = 2
  zones                  = 3
  performance_multiplier = 1
}

load {
  rate           = 100
  duration       = "12s"
  mix            = "read=80,write=20"
  keys           = 1000
  distribution   = "uniform"
  value_size     = 256
  target         = "active"
  mount          = "vaultstorm"
  late_threshold = "10ms"
  history_keys   = 16
}

fault "kill" {
  at            = "3s"
  target        = "leader"
  restart_after = "2s"
}

expect {
  max_unavailability = "15s"
  lost_writes        = 0
  healed_within      = "30s"
  leader_within      = "10s"
  new_leader         = true
  min_voters_after   = 5
  linearizable       = true
}
