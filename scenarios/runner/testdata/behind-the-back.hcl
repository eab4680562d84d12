name        = "behind-the-back"
description = "No fault; a test writes to one of the sampled keys with its own client while the load runs. Every acknowledged write is still readable, but the history is not linearizable: the check must say so."

cluster {
  nodes                  = 3
  performance_multiplier = 1
}

load {
  rate         = 50
  duration     = "15s"
  keys         = 16
  history_keys = 16
}

expect {
  lost_writes  = 0
  linearizable = true
}
