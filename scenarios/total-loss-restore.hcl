name        = "total-loss-restore"
description = "Every spot instance of the pool reclaimed at once, RAID0 arrays and all: only the backups are left. A snapshot agent saves a raft snapshot every 30s off the arrays; 20s after the loss a brand-new cluster is restored from the latest one, auto-unsealed by the same transit key, and the load resumes. Reports the RPO in acknowledged writes and seconds, and the RTO by phase."

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

snapshots {
  interval = "30s"
  retain   = 5
}

# 20s after the snapshot of 2m30s: the RPO window.
fault "total_loss" {
  at = "2m50s"
}

# The time it takes a team to notice and start the rebuild, shortened.
fault "restore" {
  at       = "3m10s"
  snapshot = 0 # the latest
  timeout  = "5m"
}

expect {
  # Nothing acknowledged before the restored snapshot may be missing.
  lost_writes = 0
  # The loss comes at most one interval after a snapshot began: the RPO is
  # at most the interval (30s) and what 20 writes/s make of it.
  rpo_seconds = "30s"
  rpo_writes  = 700
  # 20s before the rebuild starts, then a new five-node cluster, the
  # restore call and the keys reloaded through the transit seal: measured
  # 37.7s to the first write at full length on a 2-core machine (README);
  # 2m leaves room for a busy one.
  rto              = "2m"
  healed_within    = "3m"
  min_voters_after = 5
}
