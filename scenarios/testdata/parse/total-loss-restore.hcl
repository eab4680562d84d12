# Parse-test example (not a shipped scenario): every node and array lost at
# once, a brand-new cluster restored from the latest snapshot.
name        = "total-loss-restore-example"
description = "Snapshots every 30s; all five nodes and their RAID0 arrays lost at 3m; a new cluster restored from the latest snapshot."

cluster {
  nodes = 5
}

load {
  rate     = 200
  duration = "6m"
}

snapshots {
  interval = "30s"
  retain   = 5
}

fault "total_loss" {
  at = "3m"
}

fault "restore" {
  at       = "3m20s"
  snapshot = 0
  timeout  = "5m"
}

expect {
  lost_writes  = 0
  rpo_writes   = 2000
  rpo_seconds  = "45s"
  rto          = "2m"
  snapshot_p99 = "500ms"
}
