# Luminary build and test entry points. `make test` is the one command that
# runs every test; CI runs it through .ci/run.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO ?= go
NPM ?= npm
NODE ?= node

# Timeouts and knobs (override on the command line: make test TEST_TIMEOUT=20m).
TEST_TIMEOUT ?= 10m
RACE_TIMEOUT ?= 10m
FUZZTIME ?= 10s
BENCHTIME ?= 1s
BENCH_TIMEOUT ?= 60m

# Packages whose tests also run under the race detector. Patterns for
# directories that do not exist yet are dropped.
# -short skips the long soak parts (e.g. the kill -9 iterations), which
# the plain go test ./... run covers.
CORE_DIRS := internal graph keys sea auth heartbeat world api

.PHONY: help run build vet test test-go test-race test-js fuzz-short bench bench-go bench-wire bench-heartbeat web node-deps clean

help:
	@echo 'make run         run the service with a demo world on http://localhost:8765/'
	@echo 'make test        run every test: go vet, race on core packages, short fuzz, go test ./...'
	@echo 'make fuzz-short  run each Fuzz target for $(FUZZTIME)'
	@echo 'make bench       long benchmarks (not part of test)'
	@echo 'make web         bundle the browser code (npm run build)'
	@echo 'make build       build ./luminary'

run:
	$(GO) run ./cmd/luminary serve --demo

build:
	$(GO) build -o luminary ./cmd/luminary

# node_modules is (re)installed from the lockfile only when it is missing or
# older than package.json / package-lock.json. npm ci writes
# node_modules/.package-lock.json, which serves as the stamp.
node-deps: node_modules/.package-lock.json

node_modules/.package-lock.json: package.json package-lock.json
	$(NPM) ci --no-audit --no-fund
	@touch $@

vet:
	$(GO) vet ./...

# The core package list, computed from the directories that exist.
core_pkgs = $$(for d in $(CORE_DIRS); do [ -d "$$d" ] && printf './%s/... ' "$$d"; done; true)

test-race:
	@pkgs="$(core_pkgs)"; \
	if [ -z "$$pkgs" ]; then echo 'test-race: no core packages yet'; exit 0; fi; \
	echo "$(GO) test -race -short -timeout $(RACE_TIMEOUT) $$pkgs"; \
	$(GO) test -race -short -timeout $(RACE_TIMEOUT) $$pkgs

test-go:
	$(GO) test -timeout $(TEST_TIMEOUT) ./...

# JavaScript unit tests normally run from go test (web's TestNodeUnit runs
# web/test/unit.mjs), so they are not a separate phase of make test. This
# target runs them directly through package.json's "test" script, if any.
test-js: node-deps
	@if $(NODE) -e 'process.exit(require("./package.json").scripts?.test ? 0 : 1)'; then \
		$(NPM) test; \
	else echo 'test-js: package.json has no test script; JS tests run from go test ./web'; fi

# Each Fuzz target runs on its own (go test -fuzz takes one target per run).
# A package whose tests do not build counts as a failure. A run that fails
# only with the fuzzing engine's "context deadline exceeded" (no failing input
# written) is retried once.
fuzz-short:
	@found=0; bad=""; log=$$(mktemp); trap 'rm -f "$$log"' EXIT; \
	for pkg in $$($(GO) list -e -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}={{.Dir}}{{end}}' ./...); do \
		dir=$${pkg#*=}; pkg=$${pkg%%=*}; \
		grep -qs '^func Fuzz' "$$dir"/*_test.go || continue; \
		if ! list=$$($(GO) test -list '^Fuzz' -run '^$$' "$$pkg" 2>&1); then \
			echo "$$list"; echo "fuzz-short: cannot list fuzz targets of $$pkg"; bad="$$bad $$pkg"; continue; \
		fi; \
		for name in $$(grep '^Fuzz' <<<"$$list" || true); do \
			found=$$((found+1)); \
			echo "$(GO) test -run '^\$$' -fuzz '^$$name\$$' -fuzztime $(FUZZTIME) $$pkg"; \
			for try in 1 2; do \
				if $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) "$$pkg" 2>&1 | tee "$$log"; then break; fi; \
				if [ "$$try" = 1 ] && grep -q 'context deadline exceeded' "$$log" && ! grep -q 'Failing input written' "$$log"; then \
					echo "fuzz-short: $$name: fuzzing engine timeout (a known go test -fuzz flake on a busy machine), retrying once"; continue; \
				fi; \
				bad="$$bad $$pkg.$$name"; break; \
			done; \
		done; \
	done; \
	echo "fuzz-short: $$found targets"; \
	if [ -n "$$bad" ]; then echo "fuzz-short: FAILED:$$bad"; exit 1; fi

# test runs every phase even if an earlier one fails, so that one CI run
# reports everything; the full go test run comes last so that its output
# closes the log, and the exit status is non-zero if any phase failed.
test: node-deps
	@failed=""; \
	phase() { name=$$1; shift; echo "=== make test: $$name"; start=$$SECONDS; \
		if "$$@"; then echo "=== make test: $$name ok ($$((SECONDS-start))s)"; \
		else echo "=== make test: $$name FAILED ($$((SECONDS-start))s)"; failed="$$failed $$name"; fi; }; \
	phase vet $(MAKE) --no-print-directory vet; \
	phase test-race $(MAKE) --no-print-directory test-race; \
	phase fuzz-short $(MAKE) --no-print-directory fuzz-short; \
	if [ -n "$$failed" ]; then echo "=== make test: failed so far:$$failed"; fi; \
	echo "=== make test: go test ./..."; \
	$(GO) test -timeout $(TEST_TIMEOUT) ./... || failed="$$failed test-go"; \
	[ -z "$$failed" ]

bench: bench-go bench-wire bench-heartbeat

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -timeout $(BENCH_TIMEOUT) ./...

bench-wire: node-deps
	@if [ -f bench/wire.sh ]; then bash bench/wire.sh; else echo 'bench-wire: bench/wire.sh not present'; fi

bench-heartbeat: node-deps
	bash bench/heartbeat.sh all

web: node-deps
	@if $(NODE) -e 'process.exit(require("./package.json").scripts?.build ? 0 : 1)'; then \
		$(NPM) run build; \
	else echo 'web: package.json has no build script yet'; fi

clean:
	rm -f luminary
	$(GO) clean -testcache
