name        = "quorum-gone"
description = "Three of five voters killed for good: quorum is gone and never comes back. Nothing can be read back, so lost_writes cannot be zero: the run must fail and say it is unverified."

cluster {
  nodes                  = 5
  performance_multiplier = 1
}

load {
  rate     = 50
  duration = "20s"
  keys     = 200
}

fault "kill" {
  at     = "5s"
  target = "random"
  count  = 3
}

expect {
  lost_writes      = 0
  min_voters_after = 5
  healed_within    = "10s"
}
