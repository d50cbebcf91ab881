# make chat   run the chat example on http://localhost:5000 (ADDR=host:port to change)
# make test   install what the tests need, then run every test with -race
# make fuzz   run every fuzz target for FUZZTIME each (default 30s)
# make bench  signalhub against centrifuge, melody and raw WebSockets over
#             loopback, under ten minutes (BENCHFLAGS=-large for the larger
#             run; see docs/benchmarks.md); make bench-go runs the in-process
#             Go benchmarks of the library
# make newcomer  the README's path in a fresh clone: go get, make chat, the
#             Go and JavaScript snippets, then a full make test there
#             (make test ends with the same check, but for that last step)
GO    ?= go
NPM   ?= npm
ADDR  ?= localhost:5000
BIN   := $(CURDIR)/bin
GOPKGS := ./... ./examples/... ./backplane/redis/... ./backplane/nats/... ./otelhub/...
FUZZTIME ?= 30s

.PHONY: chat test test-go test-e2e test-newcomer vet bench bench-go fuzz fuzz-short e2e-deps node-deps chat-deps tools clean newcomer

chat: chat-deps
	$(GO) run ./examples/chat -addr $(ADDR)

# The page's official client bundle, from the committed lockfile; fetched once.
chat-deps: examples/chat/node_modules/@microsoft/signalr/package.json
examples/chat/node_modules/@microsoft/signalr/package.json: examples/chat/package-lock.json
	cd examples/chat && $(NPM) ci --no-audit --no-fund
	@touch $@

test: tools vet node-deps test-go fuzz-short test-e2e test-browser test-newcomer

# The official client for the Node tests and for the Go interop test in e2e/.
node-deps:
	@if command -v node >/dev/null && command -v $(NPM) >/dev/null; then \
		$(MAKE) --no-print-directory e2e-deps; \
	fi

# Node.js runs the end-to-end tests with the official client, the Redis
# engine's tests start their own redis-server and the browser test drives
# Debian's chromium (both installed here when missing, with apt-get as
# root). With CI set a missing tool fails the run; elsewhere the tests that
# need it skip with a hint.
tools:
	@command -v $(GO) >/dev/null || { echo "make test: Go is required: https://go.dev/doc/install"; exit 1; }
	@if ! command -v redis-server >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "make test: installing redis-server"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null || exit 1; \
		elif [ -n "$$CI" ]; then echo "make test: redis-server is required in CI (apt-get install redis-server)"; exit 1; \
		else echo "make test: redis-server not found: the Redis engine tests will be skipped (apt-get install redis-server)"; fi; \
	fi
	@if ! command -v $(CHROMIUM) >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "make test: installing chromium"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null || exit 1; \
		elif [ -n "$$CI" ]; then echo "make test: chromium is required in CI (apt-get install chromium)"; exit 1; \
		else echo "make test: chromium not found: the browser test will be skipped (apt-get install chromium)"; fi; \
	fi
	@if ! command -v node >/dev/null || ! command -v $(NPM) >/dev/null; then \
		if [ -n "$$CI" ]; then echo "make test: node and npm are required in CI (apt-get install nodejs npm)"; exit 1; fi; \
		echo "make test: node/npm not found: the end-to-end tests will be skipped (apt-get install nodejs npm)"; \
	fi

vet:
	$(GO) vet $(GOPKGS)
	cd bench && $(GO) vet $(BENCHPKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path '*/node_modules/*')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# The bench module's own packages (not its server programs, which would
# build the peers) are tested here too: the generator's histogram, payload
# and sharding.
BENCHPKGS := ./cmd/loadgen/ ./internal/...

test-go:
	$(GO) test -race -shuffle=on -count=1 -timeout 10m $(GOPKGS)
	cd bench && $(GO) test -race -shuffle=on -count=1 -timeout 5m $(BENCHPKGS)

e2e-deps: e2e/node_modules/@microsoft/signalr/package.json
e2e/node_modules/@microsoft/signalr/package.json: e2e/package-lock.json
	cd e2e && $(NPM) ci --no-audit --no-fund
	@touch $@

test-e2e:
	@if ! command -v node >/dev/null; then \
		if [ -n "$$CI" ]; then exit 1; fi; \
		echo "SKIP e2e: node not found (apt-get install nodejs npm)"; exit 0; \
	fi; \
	$(MAKE) --no-print-directory e2e-deps && \
	$(GO) build -race -o $(BIN)/chat ./examples/chat && \
	cd e2e && CHAT_BIN=$(BIN)/chat $(NPM) test

# The chat page in headless Chromium, driven by playwright-core, with the
# bundle make chat serves; screenshots go to e2e/artifacts/. Without
# chromium the test skips with a hint (fails with CI set).
.PHONY: test-browser
CHROMIUM ?= chromium
test-browser:
	@if ! command -v node >/dev/null; then \
		if [ -n "$$CI" ]; then exit 1; fi; \
		echo "SKIP browser test: node not found (apt-get install nodejs npm)"; exit 0; \
	fi; \
	$(MAKE) --no-print-directory e2e-deps chat-deps && \
	$(GO) build -race -o $(BIN)/chat ./examples/chat && \
	cd e2e && CHAT_BIN=$(BIN)/chat CHROMIUM_PATH="$$(command -v $(CHROMIUM))" node --test browser.test.mjs

# bench/ is a nested module, so the library's go.mod never sees the
# systems it is compared with; the servers and the generator are built into
# bin/bench and the generator starts the servers itself.
BENCHFLAGS ?=
bench:
	cd bench && $(GO) build -o $(BIN)/bench/ ./cmd/...
	$(BIN)/bench/loadgen -bin $(BIN)/bench $(BENCHFLAGS)

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# go test -fuzz takes one target per package and run, so every Fuzz func
# of every package gets a run of its own; a failure does not stop the
# others. Failing inputs land in the package's testdata/fuzz, where plain
# go test replays them. Go 1.26's fuzzer may end a timed run with a bare
# "context deadline exceeded" (go.dev/issue/75804): a run fails only when
# it found something (it writes the failing input) or failed otherwise.
fuzz:
	@failed=; \
	for dir in $$(grep -rl --include='*_test.go' --exclude-dir=node_modules '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
		for target in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$dir/*_test.go); do \
			echo "fuzz $$dir $$target for $(FUZZTIME)"; \
			out=$$($(GO) test $$dir -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) 2>&1); rc=$$?; \
			echo "$$out" | tail -3; \
			if [ $$rc -ne 0 ]; then \
				if echo "$$out" | grep -q 'Failing input written' || ! echo "$$out" | grep -q '^    context deadline exceeded$$'; then \
					echo "$$out"; failed="$$failed $$dir:$$target"; \
				else echo "(the fuzzer's end-of-time race, nothing found)"; fi; \
			fi; \
		done; \
	done; \
	if [ -n "$$failed" ]; then echo "make fuzz: failed:$$failed"; exit 1; fi

# A short pass for make test (the seed corpora already ran in test-go),
# bounded by a count of executions per target rather than by time.
fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=3000x

# A fresh clone of this repository (with the working tree's uncommitted
# changes) walks the README's path; see scripts/newcomer/main.go. make test
# runs it last, so that its clone, npm and builds do not compete with the
# timing of the other tests, and without the clone's own make test;
# make newcomer runs all of it.
test-newcomer:
	@if ! command -v git >/dev/null || ! git rev-parse --git-dir >/dev/null 2>&1 || \
		! command -v node >/dev/null || ! command -v $(NPM) >/dev/null; then \
		if [ -n "$$CI" ]; then echo "make test: the newcomer check needs a git clone, node and npm in CI"; exit 1; fi; \
		echo "SKIP newcomer check: it needs a git work tree, node and npm (apt-get install git nodejs npm)"; exit 0; \
	fi; \
	$(GO) run ./scripts/newcomer

newcomer:
	$(GO) run ./scripts/newcomer -full

clean:
	rm -rf $(BIN) e2e/node_modules examples/chat/node_modules
