name        = "upgrade"
description = "Pre-upgrade validation: five 1.19.5 nodes rolled to 1.21.0 under load in HashiCorp's order (each standby in turn, the active node last after a step-down, never a failover to an older version), then checked as Vault's own enos upgrade scenario checks: versions, voters, a step-down, reads through every standby, a restart unsealed by the transit seal."

cluster {
  nodes                  = 5
  zones                  = 3
  performance_multiplier = 1
  vault_version          = "1.19.5"
}

load {
  rate     = 100 # what a 2-core machine with five nodes sustains with a valid generator; run --rate for more
  duration = "4m"
  target   = "active"
}

fault "upgrade" {
  at            = "30s"
  to_version    = "1.21.0"
  step_down     = true
  pause_between = "10s"
  timeout       = "2m"
}

expect {
  versions_after         = "1.21.0"
  min_voters_after       = 5
  step_down_within       = "10s"
  reads_through_standbys = true
  seal_restart           = true
  lost_writes            = 0
  linearizable           = true
  # A standby's step stalls only the requests it forwards; the active
  # node's step is one election (1s timers) after its step-down.
  max_unavailability = "15s"
  healed_within      = "5m"
}
