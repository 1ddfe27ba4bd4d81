# jwtrevoke — the two commands of the quick start are `make run` and `make test`.
GO        ?= go
PKGS      := ./...
# Every package runs under the race detector in `make test`.
RACE_PKGS := ./...
BENCH_COUNT ?= 6
BENCH_TIME  ?= 1s
FUZZ_TIME   ?= 30s

.PHONY: all test lint vet fmt-check staticcheck unit node bench bench-node bench-e2e fuzz run tools deps chaos interop interop-hydra console-screenshot

all: test

## test: everything CI runs: formatting, vet, staticcheck, the whole suite
## under -race (fuzz seed corpora included: `go test` replays them).
test: lint unit node

## deps: what the tests need outside Go, from Debian's packages when
## missing: redis-server (internal/redistest starts its own on a free port; a
## system service on 6379 is never used), nginx (internal/gateway runs
## its own with a config of its own; the package's service is not started:
## RUNLEVEL=1 keeps invoke-rc.d from starting it) and chromium (the
## console's browser test, internal/revoker TestConsoleInBrowser).
DEBIAN_DEPS := redis-server:redis-server nginx:nginx chromium:chromium
deps:
	@missing=; for d in $(DEBIAN_DEPS); do cmd=$${d%%:*}; pkg=$${d#*:}; \
	  command -v $$cmd >/dev/null 2>&1 || [ -x /usr/sbin/$$cmd ] || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then echo "installing$$missing (Debian packages)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO="sudo -n"; fi; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq --no-install-recommends $$missing; fi

## node: the Node package (sdk/node): its npm packages from the lockfile
## (npm ci), the TypeScript build, and its tests, which run an Express and a
## hapi app against the whole system in dev mode (they build
## cmd/jwtrevoke-dev). Needs Node.js 20 and npm.
node:
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { echo "make node: Node.js 20 and npm are needed (sdk/node)"; exit 1; }
	cd sdk/node && npm ci --no-audit --no-fund && npm test

unit: deps
	$(GO) test -race -count=1 -timeout 20m $(RACE_PKGS)

lint: fmt-check vet staticcheck

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)
	$(GO) vet -tags chaos ./internal/chaos

staticcheck:
	$(GO) tool staticcheck $(PKGS)
	$(GO) tool staticcheck -tags chaos ./internal/chaos

## bench: the benchmarks, summarised by benchstat (medians with confidence
## intervals); raw output in bench.txt. Three passes: everything at
## -count $(BENCH_COUNT); the parallel Verify at -cpu 1,2; replay-to-ready
## (100k and 1M revocations, one replay per count: the stream is published
## once). internal/feed's BenchmarkReplay (test applier) runs on demand only.
bench:
	$(GO) test -run '^$$' -bench . -skip 'Replay|Parallel' -benchmem -count $(BENCH_COUNT) -benchtime $(BENCH_TIME) -timeout 60m $(RACE_PKGS) | tee bench.txt
	$(GO) test -run '^$$' -bench 'Parallel' -cpu 1,2 -benchmem -count $(BENCH_COUNT) -benchtime $(BENCH_TIME) -timeout 60m ./pkg/verifier | tee -a bench.txt
	$(GO) test -run '^$$' -bench 'Replay' -benchtime 1x -count 5 -timeout 60m ./pkg/verifier | tee -a bench.txt
	$(GO) tool benchstat bench.txt
	$(MAKE) bench-node

## bench-node: the Node package's check (verifierd over a Unix socket and
## loopback TCP) beside jwt-redis's verify against a local redis-server, in
## the same run (sdk/node/bench/bench.mjs; ~1 min).
bench-node: deps
	cd sdk/node && npm ci --no-audit --no-fund && npm run bench

## bench-e2e: the propagation benchmark (docs/propagation.md): a 3-node NATS
## cluster, redis-server, the revoker and 8 example replicas as processes on
## 127.0.0.1; revocations at 10, 100, 1000/s; ?wait=enforced at 100/s beside
## them; 20k revocations through the batch endpoint (acknowledged per
## second); cold start with 100k in the stream. Prints the tables and
## issue 12's verdicts; writes docs/propagation.svg and .csv.
## BENCH_E2E_FLAGS passes flags (go run ./bench/e2e -h).
bench-e2e: deps
	$(GO) run ./bench/e2e $(BENCH_E2E_FLAGS)

## console-screenshot: docs/console.png, taken by the console's browser test
## (a fleet of three replicas, a revocation confirmed by all three).
console-screenshot: deps
	JWTREVOKE_CONSOLE_SCREENSHOT=$(CURDIR)/docs/console.png $(GO) test -count=1 -run '^TestConsoleInBrowser$$' ./internal/revoker

## fuzz: run every fuzz target for FUZZ_TIME each; crashers land in testdata/.
fuzz:
	@set -e; $(GO) list -f '{{.ImportPath}} {{.Dir}}' $(RACE_PKGS) | while read pkg dir; do \
		for f in $$(cd $$dir && grep -ho '^func Fuzz[A-Za-z0-9_]*' *_test.go 2>/dev/null | sed 's/func //'); do \
			echo "== $$pkg $$f ($(FUZZ_TIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZ_TIME) $$pkg; \
		done; \
	done

## chaos: the failure suite (docs/failure-testing.md): every fault scenario
## (-tags chaos) with more operations (-chaos.long), under -race, ~16 min.
## `make test` runs its checker tests, the no-fault baseline and a short
## nemesis (every fault once, ~30-45 s).
chaos: deps
	$(GO) test -race -count=1 -timeout 30m -tags chaos -v -run . ./internal/chaos -chaos.long

## run: the whole system in one process, dev mode (embedded NATS, in-process
## Redis, issuer :8081, revoker :8082, example :8080); prints what to try.
run:
	$(GO) run ./cmd/jwtrevoke-dev

## interop: the interoperability tests against a real Ory Hydra v2.3.0
## (interop/, a module of its own that `make test` never runs): what Hydra
## sends, and the whole path — login at Hydra, its token accepted by 3
## example replicas, logout at Hydra, the back-channel logout token taken
## by the revoker, the token refused everywhere. ~20 s once Hydra is built;
## building it (interop-hydra) is the long part, see docs/providers.md.
interop: deps interop-hydra
	cd interop && $(GO) test -count=1 -v -timeout 15m ./...

## interop-hydra: only build interop/.bin/hydra from Hydra's module source
## (cgo, sqlite tags); a no-op when the binary is there.
interop-hydra:
	GO=$(GO) ./interop/build-hydra.sh
