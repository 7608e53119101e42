# lambdaflow: build, run and test. `make help` lists the targets.

GO ?= go
BIN := bin/lambdaflow

.PHONY: help run build test lint bench screenshots clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

run: ## start the service on 127.0.0.1:8080 with the example projects (data in ./data)
	$(GO) run ./cmd/lambdaflow serve

build: ## build the binary into bin/
	$(GO) build -o $(BIN) ./cmd/lambdaflow

test: ## run every test with the race detector
	$(GO) test -race -count=1 ./...

lint: ## check formatting and run go vet
	@unformatted="$$(gofmt -l .)"; if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

bench: ## run the benchmarks (figures in docs/benchmarks.md)
	$(GO) test -run '^$$' -bench . -benchmem ./...

screenshots: ## redraw the admin page screenshots in docs/ (needs chromium; takes about 3 minutes)
	LAMBDAFLOW_SCREENSHOTS_DIR=$(CURDIR)/docs $(GO) test -race -count=1 -run '^TestAdminScreenshots$$' -timeout 10m ./cmd/lambdaflow

clean: ## remove build output and the local data directory
	rm -rf bin data
