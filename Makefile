# The two commands a newcomer needs: `make demo` and `make test`.
GO      ?= go
BIN     ?= bin/xbt-tracker
PKGS    ?= ./...

.PHONY: build test lint demo fuzz bench clean dev-db

build:
	$(GO) build -o $(BIN) ./cmd/xbt-tracker

# Every test, against a real MariaDB (scripts/dev-db.sh finds or starts one).
test: build
	XBT_TEST_DSN="$$(scripts/dev-db.sh)" XBT_TEST_BINARY="$(CURDIR)/$(BIN)" $(GO) test -race -count=1 $(PKGS)

lint:
	@out="$$(gofmt -l $$(git ls-files '*.go') 2>/dev/null)"; \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

# Local database, migrations, a demo user and torrent, then the tracker in the foreground.
demo: build
	scripts/demo.sh

dev-db:
	@scripts/dev-db.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

clean:
	rm -rf bin
