name        = "standby-stall"
description = "The standby the load is sent to (node3) is stopped with SIGSTOP for 5s: every request sent to it waits and then succeeds. The stall must show as about 4-5s of unavailability (requests answered more than 1s late), with no error at all."

cluster {
  nodes                  = 3
  performance_multiplier = 1
}

load {
  rate     = 50
  duration = "20s"
  keys     = 200
  target   = "node3"
}

fault "pause" {
  at       = "6s"
  target   = "node3"
  duration = "5s"
}

expect {
  unavailable_after = "1s"
  lost_writes       = 0
}
