# lambdaflow: build, run and test. `make help` lists the targets.

GO ?= go
BIN := bin/lambdaflow

.PHONY: help run build test lint bench bench-deps bench-smoke bench-go clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

run: ## start the service on 127.0.0.1:8080 with the example projects (data in ./data)
	$(GO) run ./cmd/lambdaflow serve

build: ## build the binary into bin/
	$(GO) build -o $(BIN) ./cmd/lambdaflow

test: ## run every test with the race detector
	$(GO) test -race -count=1 ./...

lint: ## check formatting and run go vet
	@unformatted="$$(gofmt -l .)"; if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

bench: bench-deps ## compare with task-spooler, Miller, DuckDB...; writes docs/benchmarks.md
	$(GO) run ./cmd/lambdaflow-bench -out docs/benchmarks.md

bench-deps: ## install the tools the benchmarks compare with (Debian packages, npm into bench/.deps)
	bash bench/install.sh

bench-go: ## run every Go benchmark once, without the peers
	$(GO) test -run '^$$' -bench . -benchmem ./...

bench-smoke: ## run the benchmark suite at tiny sizes, skipping tools that are missing
	$(GO) run ./cmd/lambdaflow-bench -smoke -out $${TMPDIR:-/tmp}/lambdaflow-bench-smoke.md

clean: ## remove build output and the local data directory
	rm -rf bin data
