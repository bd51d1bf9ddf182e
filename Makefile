# The two commands a newcomer needs: `make demo` and `make test`.
GO      ?= go
BIN     ?= bin/xbt-tracker
PKGS    ?= ./...

# golangci-lint, pinned (with every dependency) in tools/go.mod; `go tool`
# builds it once into the Go cache. Checks and exclusions: .golangci.yml.
GOLANGCI_LINT ?= $(GO) tool -modfile=tools/go.mod golangci-lint

.PHONY: build test test-unit lint demo demo-cluster fuzz bench clean dev-db

build:
	$(GO) build -o $(BIN) ./cmd/xbt-tracker

# Every test, against a real MariaDB (scripts/dev-db.sh finds or starts one).
test: build
	XBT_TEST_DSN="$$(scripts/dev-db.sh)" XBT_TEST_BINARY="$(CURDIR)/$(BIN)" $(GO) test -race -count=1 -timeout 30m $(PKGS)

# The tests that need no database, binary or BitTorrent client (-short skips
# those: internal/dbtest.New and integration's TestMain): the edit-test loop.
test-unit:
	$(GO) test -short -race $(PKGS)

# gofmt on every file (build tags included: eventloop_other.go, norace_test.go),
# then golangci-lint: go vet, errorlint, gosec, staticcheck, revive and
# depguard (the import rules; internal/archtest checks them transitively).
lint:
	@out="$$(gofmt -l $$(git ls-files '*.go') 2>/dev/null)"; \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GOLANGCI_LINT) run $(PKGS)

# Local database, migrations, a demo user and torrent, then the tracker in the foreground.
demo: build
	scripts/demo.sh

# The same with 2 instances (XBT_CLUSTER_SIZE=3 for three) behind HAProxy,
# deploy/haproxy/haproxy.cfg, on port 2720; needs haproxy installed.
demo-cluster: build
	scripts/demo-cluster.sh

dev-db:
	@scripts/dev-db.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

clean:
	rm -rf bin
