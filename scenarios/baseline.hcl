name        = "baseline"
description = "No fault: steady KV load on a healthy five-node cluster, the reference every other run is compared with."

cluster {
  nodes                  = 5
  zones                  = 3
  performance_multiplier = 1 # Vault's recommended production value: 1s raft timers
}

load {
  rate     = 100 # what a 2-core machine with five nodes sustains with a valid generator; run --rate for more
  duration = "1m"
  mix      = "read=80,write=20"
  target   = "active"
}

expect {
  lost_writes        = 0
  max_unavailability = "0s"
  max_error_rate     = 0
  # Five nodes, the seal and the load generator share 2 cores here, and
  # every KV write is fsynced on three of five btrfs RAID0 arrays over loop
  # files: at 100/s the worst p99 (writes) measured 0.13-0.25s (at 200/s
  # 0.85s with the machine to itself and 2.3s when it shared it). Set yours
  # from a baseline run on your own hardware.
  p99                = "1s"
  linearizable       = true
}
