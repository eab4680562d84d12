name        = "quorum-loss"
description = "A reclaim wave takes three of five nodes: quorum is gone, no leader, replacements cannot join; then Vault's outage recovery (raft/peers.json on the two survivors, restart) and the replacements join. Reports the acknowledged writes that did not survive, whatever the number."

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

fault "spot_reclaim" {
  at            = "1m"
  target        = "random"
  count         = 3
  notice        = "30s"
  replace_after = "20s" # they start, but cannot join a cluster with no leader
}

# An operator's outage recovery, a minute into the outage: peers.json on
# the survivors lists only themselves, they restart and elect a leader, and
# the waiting replacements then join through retry_join.
fault "recover_quorum" {
  at      = "2m30s"
  timeout = "2m"
}

expect {
  # No lost_writes threshold: losing acknowledged writes is what this
  # scenario measures, and the number is reported whatever it is.
  healed_within      = "4m"
  min_voters_after   = 5
  dead_peers_removed = true
}
