name        = "rollback"
description = "The other half of an upgrade plan: two standbys of a 1.19.5 cluster upgraded to 1.21.0, then rolled back to 1.19.5 while the active node still runs 1.19.5 (safe: no failover to an older version). The cluster must stay healthy and lose nothing."

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
  at         = "30s"
  to_version = "1.21.0"
  count      = 2 # standbys only, never the active node
}

fault "upgrade" {
  at         = "2m"
  to_version = "1.19.5" # the two upgraded standbys back
}

expect {
  versions_after   = "1.19.5"
  min_voters_after = 5
  lost_writes      = 0
  linearizable     = true
  new_leader       = false
  healed_within    = "3m"
}
