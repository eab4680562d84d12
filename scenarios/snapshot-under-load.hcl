name        = "snapshot-under-load"
description = "What backups cost: a raft snapshot every 10s of a 10,000-key store while the load runs; the latency of the requests sent while a snapshot is taken, against the others."

cluster {
  nodes                  = 5
  zones                  = 3
  performance_multiplier = 1
}

load {
  rate     = 100 # what a 2-core machine with five nodes sustains with a valid generator; run --rate for more
  duration = "2m"
  keys     = 10000
  target   = "active"
}

snapshots {
  interval = "10s"
  retain   = 3
}

expect {
  lost_writes  = 0
  linearizable = true
  # The active node streams the whole store while it keeps serving: p99 of
  # the requests sent during a snapshot.
  snapshot_p99 = "1s"
}
