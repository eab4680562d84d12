# Parse-test example: snapshots only (no restore), shipped to an
# S3-compatible store, the cost measured on the load's latency.
name = "snapshots-s3-example"

load {
  duration = "2m"
  keys     = 100000
}

snapshots {
  interval = "10s"
  retain   = 3
  store    = "s3://vault-snapshots?endpoint=http://127.0.0.1:8333&region=us-east-1&use_path_style=true"
}

expect {
  snapshot_p99 = "1s"
}
