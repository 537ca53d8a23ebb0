# Slipway. `make` alone lists the targets; each one's line comes from its `## ` comment.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO ?= go
SERVICES_DIR := .services

# Every .go file of the module's packages (build-tagged and test files too); unlike `gofmt -l .`,
# this never walks .services/ (a docker data root) or web/node_modules.
GO_FILES_CMD = $(GO) list -e -f '{{$$d := .Dir}}{{range .GoFiles}}{{$$d}}/{{.}}{{"\n"}}{{end}}{{range .CgoFiles}}{{$$d}}/{{.}}{{"\n"}}{{end}}{{range .TestGoFiles}}{{$$d}}/{{.}}{{"\n"}}{{end}}{{range .XTestGoFiles}}{{$$d}}/{{.}}{{"\n"}}{{end}}{{range .IgnoredGoFiles}}{{$$d}}/{{.}}{{"\n"}}{{end}}' ./...

.PHONY: help build test test-loaded vet services-up services-down run bench

help: ## list the targets
	@awk 'BEGIN { FS = ":.*?## " } /^[a-zA-Z0-9_-]+:.*?## / { printf "  %-14s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

build: ## build bin/slipway
	$(GO) build -o bin/slipway ./cmd/slipway

test: ## run all tests with -race against private PostgreSQL, Docker, Swarm and registry (scripts/test.sh)
	bash scripts/test.sh

test-loaded: ## run make test under a CPU-hogging load (scripts/cpuhog.sh)
	bash scripts/cpuhog.sh -- $(MAKE) --no-print-directory test

STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

vet: ## go vet, staticcheck, and fail on any file gofmt would change
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	@files=$$($(GO_FILES_CMD) | sort -u) || exit 1; \
	[ -z "$$files" ] || out=$$(gofmt -l $$files) || exit 1; \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

services-up: ## start the test services in .services/ for development (then: source .services/env)
	bash scripts/services.sh up $(SERVICES_DIR)
	@echo "now: source $(SERVICES_DIR)/env"

services-down: ## stop the services of services-up and remove .services/
	bash scripts/services.sh down $(SERVICES_DIR)

run: ## a local demo: Slipway, a sample repository and its first deploy; then scripts/demo-push.sh (scripts/run.sh)
	bash scripts/run.sh

IMAGE ?= slipway:dev
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: image
image: ## build the container image (IMAGE=slipway:dev) with its version, commit and date stamped (Dockerfile)
	docker build --build-arg VERSION=$(VERSION) \
		--build-arg REVISION=$$(git rev-parse HEAD 2>/dev/null) \
		--build-arg CREATED=$$(date -u +%Y-%m-%dT%H:%M:%SZ) -t $(IMAGE) .

bench: ## run the benchmarks (scripts/bench.sh)
	bash scripts/bench.sh

.PHONY: chaos
chaos: ## the long chaos suite: replicas killed and paused, PostgreSQL restarted, under pushes (README)
	SLIPWAY_CHAOS=long bash scripts/test.sh -run '^TestChaos$$' -v -timeout 90m
