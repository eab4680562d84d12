# spot-reclaim (synthetic)
cluster {
  nodes    = 5
  provider = "process"
  storage  = "raid0"
}
load {
  rate     = 200
  duration = "120s"
}
fault "spot_reclaim" {
  at     = "30s"
  target = "vault-3"
}
fault "kill" {
  at     = "1m10s"
  target = "vault-1"
}
expect {
  max_unavailability = "10s"
  lost_writes        = 0
  healed_within      = "60s"
  p99_during_fault   = "5s"
}
