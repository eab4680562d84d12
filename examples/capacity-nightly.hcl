# A nightly capacity gate: `vaultstorm capacity examples/capacity-nightly.hcl`
# stands up a 3-node and a 5-node cluster in turn (RAID0, as the seed's
# design), searches each for the highest rate it sustains at p99 ≤ 100 ms
# with a read-heavy and a write-heavy mix, and exits 1 when any of them
# falls below expect_rate (junit.xml has one case per series).
name        = "capacity-nightly"
description = "Capacity of 3 and 5 nodes, read-heavy and write-heavy, gated at 150 req/s within p99 100 ms"

cluster {
  nodes   = 5
  storage = "raid0"
}

load {
  keys       = 1000
  value_size = 256
  target     = "active"
}

capacity {
  slo_p99     = "100ms"
  slo_errors  = 0.1 # percent
  warmup      = "5s"
  hold        = "15s"
  start_rate  = 50
  factor      = 2
  max_rate    = 20000
  precision   = 5 # percent
  expect_rate = 150
  nodes       = [3, 5]
  mixes       = ["read=80,write=20", "write=100"]
}
