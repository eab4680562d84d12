# vaultstorm: `make build` for the CLI, `make vault` for the Vault server it
# drives, `make test` for everything CI runs.

VAULT_VERSION  ?= 1.21.0
DEFAULT_VAULT  := 1.21.0
VERSION        ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
GO             ?= go
BIN            := bin

# Tests run as root on a real cluster; they find the binaries here.
export VAULTSTORM_VAULT_BIN ?= $(CURDIR)/$(BIN)/vault
export VAULTSTORM_BIN       ?= $(CURDIR)/$(BIN)/vaultstorm
export TESTCONTAINERS_RYUK_DISABLED   = true
export TESTCONTAINERS_HOST_OVERRIDE   = 127.0.0.1

.PHONY: all build vault test test-unit bench lint clean

all: build vault

build:
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
		echo "building Vault $(VAULT_VERSION) (a cold build takes ~10 minutes and ~4 GB of module cache)"; \
		mkdir -p $(BIN) && cd tools/vault/$(VAULT_VERSION) && \
		$(GO) build -trimpath -ldflags '-s -w' -o $(CURDIR)/$@.tmp . && mv $(CURDIR)/$@.tmp $(CURDIR)/$@; \
	fi

FORCE:

# Everything, integration tests included (needs root, btrfs-progs, loop
# devices; see .ci/run). -p 1: integration packages share loopback
# addresses and ports, so they must not run at the same time.
test: build vault
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) test -p 1 -count=1 -timeout 60m ./...

# Pure-logic tests only (no root, no Vault).
test-unit:
	$(GO) test -short -count=1 ./...

bench: build vault
	$(GO) test -run '^$$' -bench . -benchtime 3s ./...

lint:
	$(GO) vet ./...
	gofmt -l $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)
