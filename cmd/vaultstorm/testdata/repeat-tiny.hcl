# CLI test of run --repeat and --vault-version (upgrade_cli_test.go): the
# smallest run there is, a one-node cluster on a plain directory, a few
# seconds of load, no fault.
name        = "repeat-tiny"
description = "A one-node cluster under a few seconds of light KV load, no fault: for the CLI test of --repeat."

cluster {
  nodes   = 1
  storage = "dir"
}

load {
  rate     = 20
  duration = "3s"
  keys     = 20
}

expect {
  lost_writes = 0
  # 60 requests on a machine busy with other tests: two late sends are
  # 3 %; this test is about --repeat, not the generator.
  generator_late_sends = 50
  generator_max_lag    = "5s"
}
