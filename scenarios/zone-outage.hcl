name        = "zone-outage"
description = "The availability zone of the active node goes dark: its two nodes are lost at once, the other zones keep quorum (2/2/1 spread), replacements come up a minute later."

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

fault "zone_outage" {
  at            = "1m"
  zone          = "leader" # the worst case: the zone holding the active node
  replace_after = "1m"
}

expect {
  leader_within      = "10s"
  new_leader         = true
  max_unavailability = "15s"
  healed_within      = "3m"
  min_voters_after   = 5
  dead_peers_removed = true
  lost_writes        = 0
  linearizable       = true
}
