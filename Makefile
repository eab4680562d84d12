# vaultstorm: `make build` for the CLI, `make vault` for the Vault server it
# drives, `make test` for everything CI runs.

VAULT_VERSION  ?= 1.21.0
DEFAULT_VAULT  := 1.21.0
# The older release upgrade validation starts from (make vault-old).
OLD_VAULT      := 1.19.5
VERSION        ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
GO             ?= go
BIN            := bin

# Tests run as root on a real cluster; they find the binaries here.
export VAULTSTORM_VAULT_BIN ?= $(CURDIR)/$(BIN)/vault
export VAULTSTORM_VAULT_BIN_OLD ?= $(CURDIR)/$(BIN)/vault-$(OLD_VAULT)
export VAULTSTORM_BIN       ?= $(CURDIR)/$(BIN)/vaultstorm
export VAULTSTORM_S3_BIN    ?= $(CURDIR)/$(BIN)/s3server
export TESTCONTAINERS_RYUK_DISABLED   = true
export TESTCONTAINERS_HOST_OVERRIDE   = 127.0.0.1

.PHONY: bench-peer all deps build vault vault-old s3 test test-unit bench lint clean

all: build vault

# What vaultstorm and its tests run, as command:Debian-package. The harness
# execs mkfs.btrfs, btrfs and losetup (cluster/storage), and modprobe when
# btrfs is not in the kernel yet; it drives nftables and NFQUEUE over
# netlink (chaos/netfault), but the tests check with nft and tc that nothing
# is left behind, and with ps that no node outlives a run.
DEPS := mkfs.btrfs:btrfs-progs btrfs:btrfs-progs losetup:mount nft:nftables tc:iproute2 ps:procps

# deps finds each command; as root with apt-get it installs the missing
# packages, otherwise it says what is missing and the line that installs it.
# It never fails the build (the binary builds without these; a run then
# stops with its own error), except under CI, where a missing command would
# only turn into failed tests later. As root the commands are looked up on
# PATH, as the harness will; as another user also in /usr/sbin and /sbin,
# where `sudo` finds them.
deps:
	@need="$(DEPS)"; grep -qw btrfs /proc/filesystems 2>/dev/null || need="$$need modprobe:kmod"; \
	look() { missing= ; pkgs= ; \
	  for cp in $$need; do c=$${cp%%:*} p=$${cp#*:}; \
	    command -v $$c >/dev/null 2>&1 && continue; \
	    missing="$$missing $$c"; case " $$pkgs " in *" $$p "*) ;; *) pkgs="$$pkgs $$p";; esac; \
	  done; }; \
	if [ "$$(id -u)" != 0 ]; then PATH="$$PATH:/usr/sbin:/sbin"; fi; \
	look; \
	if [ -z "$$missing" ]; then echo "deps: found$$(for cp in $$need; do printf ' %s' $${cp%%:*}; done)"; exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "deps: missing$$missing; installing$$pkgs"; \
	  log=$$(mktemp); \
	  if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	         DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$pkgs; } </dev/null >$$log 2>&1; then \
	    cat $$log; echo "deps: apt-get failed (above)"; fi; \
	  rm -f $$log; want=$$pkgs; look; \
	  if [ -z "$$missing" ]; then echo "deps: installed$$want"; exit 0; fi; \
	  echo "deps: still not found on PATH ($$PATH):$$missing"; \
	elif command -v apt-get >/dev/null; then \
	  echo "deps: missing$$missing (vaultstorm runs them as root; building does not need them)"; \
	  echo "deps: install with: sudo apt-get install -y --no-install-recommends$$pkgs   (or: sudo make deps)"; \
	else \
	  echo "deps: missing$$missing; no apt-get here: install what provides them (Debian packages:$$pkgs)"; \
	fi; \
	if [ -n "$$CI" ]; then echo "deps: CI is set, so this fails the build"; exit 1; fi

build: deps
	$(GO) build -trimpath -ldflags '-s -w -X main.version=$(VERSION)' -o $(BIN)/vaultstorm ./cmd/vaultstorm

# The Vault server, built from the Go module at a pinned version in its own
# module (tools/vault/VERSION), so vaultstorm's go.mod stays lean. Skipped
# when the binary is already there at that version. `make vault
# VAULT_VERSION=1.19.5` builds bin/vault-1.19.5 for upgrade validation;
# bin/vault is always the default version.
vault: $(BIN)/vault-$(VAULT_VERSION)
ifeq ($(VAULT_VERSION),$(DEFAULT_VAULT))
	ln -sfn vault-$(VAULT_VERSION) $(BIN)/vault
endif

$(BIN)/vault-$(VAULT_VERSION): FORCE
	@if [ ! -d tools/vault/$(VAULT_VERSION) ]; then \
		echo "no build module for Vault $(VAULT_VERSION): have $$(ls tools/vault | grep -v _src | tr '\n' ' ')"; exit 2; fi
	@if [ -x $@ ] && $@ version 2>/dev/null | grep -qE "Vault v$(VAULT_VERSION)([^0-9.-]|$$)"; then \
		echo "$@ is Vault $(VAULT_VERSION): up to date"; \
	else \
		echo "building Vault $(VAULT_VERSION) (on 2 cores: ~16 minutes cold, ~12 when another version filled the module cache; ~4 GB of it)"; \
		mkdir -p $(BIN) && cd tools/vault/$(VAULT_VERSION) && \
		CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(CURDIR)/$@.tmp . && mv $(CURDIR)/$@.tmp $(CURDIR)/$@; \
	fi

FORCE:

# The older Vault the upgrade tests and scenarios start from
# (bin/vault-$(OLD_VAULT)); the same as `make vault VAULT_VERSION=$(OLD_VAULT)`.
vault-old:
	@$(MAKE) --no-print-directory vault VAULT_VERSION=$(OLD_VAULT)

# The S3-compatible server the snapshot store tests start (gofakes3 in its
# own module, tools/s3, so vaultstorm's go.mod stays lean; SeaweedFS took
# 16m41s to build cold here, this 83s). Rebuilt only when tools/s3 changed.
s3: $(BIN)/s3server

$(BIN)/s3server: tools/s3/main.go tools/s3/go.mod tools/s3/go.sum
	mkdir -p $(BIN) && cd tools/s3 && $(GO) build -trimpath -ldflags '-s -w' -o $(CURDIR)/$@.tmp . && mv $(CURDIR)/$@.tmp $(CURDIR)/$@

# Everything, integration tests included (needs root and loop devices;
# deps installs btrfs-progs and the rest), so both Vault versions: the
# upgrade tests roll $(OLD_VAULT) to $(DEFAULT_VAULT). -p 1: integration packages
# share loopback addresses and ports, so they must not run at the same time.
test: deps build vault vault-old s3
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) test -p 1 -count=1 -timeout 85m ./...

# Pure-logic tests only (no root, no Vault).
test-unit:
	$(GO) test -short -count=1 ./...

bench: build vault
	$(GO) test -run '^$$' -bench . -benchtime 3s ./...

# vaultstorm beside hashicorp/vault-benchmark on one cluster, closed-loop
# reads, RUNS turns each: VAULT_BENCHMARK=/path/to/vault-benchmark make
# bench-peer (scripts/bench-peer.sh says how to build it and what it prints).
bench-peer: build vault
	scripts/bench-peer.sh

lint:
	$(GO) vet ./...
	gofmt -l $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)
