# lambdaflow: build, run and test. `make help` lists the targets.

GO ?= go
BIN := bin/lambdaflow

.PHONY: help run build test test-postgres lint bench bench-deps bench-smoke bench-go fuzz soak clean openapi openapi-lint screenshots

# FUZZTIME is how long `make fuzz` runs each fuzz target; SOAKTIME is how
# long `make soak` loads the server.
FUZZTIME ?= 10s
SOAKTIME ?= 60s
FUZZ_TARGETS := ./projects:FuzzValidate ./projects:FuzzBind ./projects/blocks:FuzzExpression \
	./projects/blocks:FuzzCSVRead ./projects/blocks:FuzzJSONRead

# Code generators, pinned. `go run pkg@version` builds each with its own
# module requirements, so they do not change go.mod.
SWAG := $(GO) run github.com/swaggo/swag/cmd/swag@v1.16.6
OAPI_CODEGEN := $(GO) run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen@v2.8.2
REDOCLY := npx --yes @redocly/cli@2.77.0

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-13s %s\n", $$1, $$2}'

run: ## start the service on 127.0.0.1:8080 with the example projects (data in ./data)
	$(GO) run ./cmd/lambdaflow serve

build: ## build the binary into bin/
	$(GO) build -o $(BIN) ./cmd/lambdaflow

test: ## run every test with the race detector
	$(GO) test -race -count=1 ./...

test-postgres: ## run the server tests on PostgreSQL, as single servers and as one-node clusters (needs LAMBDAFLOW_TEST_DATABASE_URL; .ci/postgres starts a server)
	@if [ -z "$$LAMBDAFLOW_TEST_DATABASE_URL" ]; then echo 'set LAMBDAFLOW_TEST_DATABASE_URL, for example: export LAMBDAFLOW_TEST_DATABASE_URL="$$(.ci/postgres)"' >&2; exit 1; fi
	LAMBDAFLOW_TEST_BACKEND=postgres $(GO) test -race -count=1 ./cmd/lambdaflow
	LAMBDAFLOW_TEST_BACKEND=cluster $(GO) test -race -count=1 ./cmd/lambdaflow

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

fuzz: ## run each fuzz target for FUZZTIME (default 10s); failing inputs land in testdata/fuzz
	@for target in $(FUZZ_TARGETS); do \
		pkg=$${target%%:*}; name=$${target##*:}; \
		echo "fuzzing $$name in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 200x $$pkg || exit 1; \
	done

soak: ## run the soak test for SOAKTIME (default 60s) and print its figures
	LAMBDAFLOW_SOAK=$(SOAKTIME) $(GO) test -race -count=1 -run '^TestSoak$$' -v ./cmd/lambdaflow

openapi: ## regenerate docs/ (swag), openapi/openapi.yaml and the Go client in openapi/client
	$(SWAG) init --quiet --generalInfo cmd/lambdaflow/main.go --dir ./ --exclude examples,openapi \
		--parseInternal --useStructName --requiredByDefault --output docs
	$(GO) run ./openapi/convert --in docs/swagger.json --out openapi/openapi.yaml
	$(OAPI_CODEGEN) --config openapi/client/oapi-codegen.yaml openapi/openapi.yaml

openapi-lint: ## lint openapi/openapi.yaml with Redocly (needs Node.js and npx)
	$(REDOCLY) lint --config openapi/redocly.yaml openapi/openapi.yaml

screenshots: ## redraw the admin page screenshots in docs/ (needs chromium; takes about 3 minutes)
	LAMBDAFLOW_SCREENSHOTS_DIR=$(CURDIR)/docs $(GO) test -race -count=1 -run '^TestAdminScreenshots$$' -timeout 10m ./cmd/lambdaflow

clean: ## remove build output and the local data directory
	rm -rf bin data
