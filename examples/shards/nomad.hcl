# Four load generators as one Nomad batch job: allocation I runs
# 'vaultstorm load --shard I/4', I = NOMAD_ALLOC_INDEX (0-based, which is
# what --shard takes). --rate is the WHOLE run's rate: each allocation sends
# 200/4 = 50 req/s, to keys of its own (load/<run id>/shard-I-of-4/).
#
# raw_exec runs /usr/local/bin/vaultstorm on each client (enable the
# raw_exec plugin there); each allocation writes its run directory under
# /var/lib/vaultstorm/runs/<run id>/ on its client. Collect the four
# directories on one machine and merge them (see README.md here):
#   vaultstorm merge --out nightly-42/merged nightly-42/shard-*
#
#   nomad job run -var run_id=nightly-42 examples/shards/nomad.hcl

variable "run_id" {
  type    = string
  default = "nightly-42"
}

variable "vault_addr" {
  type    = string
  default = "https://vault.service.consul:8200"
}

job "vaultstorm-load" {
  type        = "batch"
  datacenters = ["*"]

  group "shards" {
    count = 4 # N: keep it equal to the /4 in --shard below

    # One generator per client: four on one machine would share its CPU,
    # and a generator that falls behind its schedule is not measuring Vault.
    constraint {
      operator = "distinct_hosts"
      value    = "true"
    }

    # A shard run again would send its quarter of the load twice: no
    # retries; merge refuses a missing shard instead.
    restart {
      attempts = 0
      mode     = "fail"
    }
    reschedule {
      attempts  = 0
      unlimited = false
    }

    task "load" {
      driver = "raw_exec"

      config {
        command = "/usr/local/bin/vaultstorm"
        args = [
          "load",
          "--rate", "200",
          "--duration", "5m",
          "--shard", "${NOMAD_ALLOC_INDEX}/4",
          "--run-id", var.run_id,
          "--out", "/var/lib/vaultstorm/runs/${var.run_id}/shard-${NOMAD_ALLOC_INDEX}",
        ]
      }

      env {
        VAULT_ADDR   = var.vault_addr
        VAULT_CACERT = "/etc/vaultstorm/ca.pem"
        # A file, 0600, provisioned on each client: the token is never
        # in the job specification or its logs.
        VAULT_TOKEN_FILE = "/etc/vaultstorm/token"
      }

      resources {
        cpu    = 1000
        memory = 256
      }
    }
  }
}
