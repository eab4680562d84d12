# Parse-test example: a rolling upgrade 1.19.5 -> 1.21.0 under load.
name = "upgrade-example"

cluster {
  vault_version          = "1.19.5"
  performance_multiplier = 1
}

load {
  duration = "8m"
}

fault "upgrade" {
  at            = "30s"
  to_version    = "1.21.0"
  step_down     = true
  pause_between = "10s"
  timeout       = "2m"
}

expect {
  lost_writes            = 0
  versions_after         = "1.21.0"
  step_down_within       = "10s"
  reads_through_standbys = true
  seal_restart           = true
  min_voters_after       = 5
}
