# The README's commands: `go run ./cmd/warden serve` runs warden; `make test` runs every test.
GO ?= go
PG_DEFAULT := postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable

.PHONY: test check build release bench fuzz

# test: formatting, vet, staticcheck, govulncheck, and the whole suite with the race detector. The PostgreSQL half of the
# store contract runs when WARDEN_TEST_POSTGRES is set (.ci/run sets it) or a server answers at
# 127.0.0.1:5432; otherwise those tests skip and say so.
test: check
	@if [ -z "$$WARDEN_TEST_POSTGRES" ] && command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; then \
		export WARDEN_TEST_POSTGRES='$(PG_DEFAULT)'; fi; \
	$(GO) test -race -count=1 -timeout 20m ./...

# check: gofmt, go vet, staticcheck (pinned), and govulncheck when its database can be reached
# (these machines reach the Go module proxy only: without the database it says so and skips).
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOVULNCHECK := golang.org/x/vuln/cmd/govulncheck@v1.1.4
check:
	@unformatted="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*'))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	@out="$$($(GO) run $(GOVULNCHECK) ./... 2>&1)"; rc=$$?; \
	if [ $$rc -ne 0 ] && echo "$$out" | grep -q 'fetching vulnerabilities'; then \
		echo "govulncheck: skipped, the vulnerability database cannot be reached from here"; \
	else echo "$$out"; exit $$rc; fi

# The version is `git describe` (a tag, or the commit when there is none; "dev" outside a checkout)
# and the commit is stamped too: these machines build with GOFLAGS=-buildvcs=false, so the go
# command records neither. The Dockerfile builds with the same flags (cmd/warden's
# TestReleaseBuild holds the two together).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
LDFLAGS := -s -w -X github.com/wardenhq/warden/internal/cli.Version=$(VERSION) -X github.com/wardenhq/warden/internal/cli.Commit=$(COMMIT)
GOBUILD = CGO_ENABLED=0 $(GO) build -trimpath -ldflags="$(LDFLAGS)"
PLATFORMS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64

build:
	$(GOBUILD) -o bin/warden ./cmd/warden

# release: static binaries for every platform in dist/ (warden-VERSION-OS-ARCH) and their SHA256SUMS.
release:
	rm -rf dist && mkdir -p dist
	for p in $(PLATFORMS); do \
		GOOS=$${p%/*} GOARCH=$${p#*/} $(GOBUILD) -o dist/warden-$(VERSION)-$${p%/*}-$${p#*/} ./cmd/warden || exit 1; \
	done
	cd dist && sha256sum warden-* > SHA256SUMS

# bench: regenerates docs/PERFORMANCE.md — runs the Go benchmarks behind every figure the issues
# ask for and the `warden bench --self` and `warden drill kill --self` scenarios, takes medians of
# 5 runs and writes the table (internal/bench/cmd/benchreport; BENCHFLAGS=-quick for a smoke run).
# It exits non-zero when a figure is missing. About ten minutes on two cores.
# The fleet's figures need PostgreSQL (WARDEN_TEST_POSTGRES, or a server at 127.0.0.1:5432).
bench:
	@if [ -z "$$WARDEN_TEST_POSTGRES" ] && command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; then \
		export WARDEN_TEST_POSTGRES='$(PG_DEFAULT)'; fi; \
	$(GO) run ./internal/bench/cmd/benchreport -o docs/PERFORMANCE.md $(BENCHFLAGS)

# fuzz: a short run of every fuzz target (each for FUZZTIME).
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$f"; $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
		done; \
	done
