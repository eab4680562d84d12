# total-loss-restore (synthetic)
name = "total-loss-restore"

cluster {
  nodes = 5
}

load {
  rate     = 100
  duration = "150s"
}

snapshots {
  interval = "15s"
  retain   = 5
}

fault "total_loss" {
  at = "1m10s"
}

fault "restore" {
  at       = "1m18s"
  snapshot = 0
}

expect {
  lost_writes      = 0
  rpo_seconds      = "15s"
  rpo_writes       = 400
  rto              = "1m"
  healed_within    = "1m"
  min_voters_after = 5
}
