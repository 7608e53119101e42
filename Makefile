# lambdaflow: build, run and test. `make help` lists the targets.

GO ?= go
BIN := bin/lambdaflow

.PHONY: help run build test lint bench clean openapi openapi-lint

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

lint: ## check formatting and run go vet
	@unformatted="$$(gofmt -l .)"; if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

bench: ## run the benchmarks (figures in docs/benchmarks.md)
	$(GO) test -run '^$$' -bench . -benchmem ./...

openapi: ## regenerate docs/ (swag), openapi/openapi.yaml and the Go client in openapi/client
	$(SWAG) init --quiet --generalInfo cmd/lambdaflow/main.go --dir ./ --exclude examples,openapi \
		--parseInternal --useStructName --requiredByDefault --output docs
	$(GO) run ./openapi/convert --in docs/swagger.json --out openapi/openapi.yaml
	$(OAPI_CODEGEN) --config openapi/client/oapi-codegen.yaml openapi/openapi.yaml

openapi-lint: ## lint openapi/openapi.yaml with Redocly (needs Node.js and npx)
	$(REDOCLY) lint --config openapi/redocly.yaml openapi/openapi.yaml

clean: ## remove build output and the local data directory
	rm -rf bin data
