# Parse-test example: two standbys upgraded, then rolled back while the
# active node still runs the old version.
name = "rollback-example"

cluster {
  vault_version = "1.19.5"
}

load {
  duration = "6m"
}

fault "upgrade" {
  at         = "30s"
  to_version = "1.21.0"
  count      = 2
}

fault "upgrade" {
  at            = "3m"
  to_version    = "1.19.5"
  pause_between = "5s"
}

expect {
  lost_writes    = 0
  versions_after = "1.19.5"
}
