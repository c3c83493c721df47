# dbward: everything a fresh machine needs is installed by these targets (Node 24 from the
# npm registry when the system Node is older, npm ci, Go-built e2e tools, pgbouncer for bench).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# The pinned Node (installed by scripts/ensure-node.sh when needed) comes first on PATH.
export PATH := $(CURDIR)/.tools/node/bin:$(CURDIR)/node_modules/.bin:$(PATH)
NODE_STAMP := .tools/node.ok
DEPS_STAMP := node_modules/.dbward-deps
REPORT_DIR := .cache/reports

-include e2e/tools/tools.mk

.PHONY: help
help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | sort | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

$(NODE_STAMP): scripts/ensure-node.sh
	@scripts/ensure-node.sh >/dev/null
	@mkdir -p .tools && node --version > $@
	@echo "node $$(node --version)"

.PHONY: node
node: $(NODE_STAMP) ## Ensure Node >= 22.12 (installs Node 24 under .tools/ when the system one is older)

$(DEPS_STAMP): package-lock.json package.json sidecar/package.json operator/package.json $(NODE_STAMP)
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

.PHONY: deps
deps: $(DEPS_STAMP) ## Install npm dependencies (npm ci)

.PHONY: build
build: deps native ## Compile TypeScript (sidecar, operator) and the sidecar's C addon
	tsc -b sidecar operator

.PHONY: lint
lint: deps ## ESLint
	eslint .

.PHONY: typecheck
typecheck: deps ## Type-check sources and tests
	tsc -b sidecar operator
	tsc -p tsconfig.test.json --noEmit

.PHONY: unit
unit: deps ## Unit tests only (fast, no servers)
	vitest run --project unit

.PHONY: test
test: lint typecheck build tools ## Lint, typecheck, build, the C addon, the Go-built e2e tools, then all unit and integration tests
	@mkdir -p $(REPORT_DIR)
	@rc=0; vitest run --reporter=default --reporter=json --outputFile.json=$(REPORT_DIR)/vitest.json || rc=$$?; \
	  node scripts/test-summary.mjs $(REPORT_DIR)/vitest.json; exit $$rc

.PHONY: demo
demo: build ## Local PostgreSQL with sample data, the sidecar in front, psql through it
	node --import tsx e2e/demo/demo.ts

.PHONY: bench
bench: build ## Benchmarks: direct vs pgbouncer vs sidecar; writes docs/benchmarks.md
	@command -v pgbouncer >/dev/null || { echo "installing pgbouncer from Debian"; apt-get install -y -qq pgbouncer >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq pgbouncer; }; }
	node --import tsx e2e/bench/run.ts

.PHONY: bench-masking
bench-masking: build ## Masking throughput: 1M rows with 2 of 5 columns masked, pgbench -S on a table with a masked column
	@command -v pgbouncer >/dev/null || { echo "installing pgbouncer from Debian"; apt-get install -y -qq pgbouncer >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq pgbouncer; }; }
	node --import tsx e2e/bench/masking.ts

.PHONY: bench-controlplane
bench-controlplane: build ## Control plane: 1,000 gRPC streams, policy-edit delivery p50/p99; writes docs/benchmarks.md
	node --import tsx e2e/bench/controlplane.ts
NODE_INCLUDE = $(firstword $(wildcard $(CURDIR)/.tools/node/include/node) $(wildcard $(dir $(shell command -v node))../include/node))
NATIVE_OUT := sidecar/native/build/fdio.node

$(NATIVE_OUT): sidecar/native/fdio.c sidecar/native/bytes.h sidecar/native/ring.h $(NODE_STAMP)
	@command -v gcc >/dev/null || { echo "installing gcc from Debian"; apt-get install -y -qq gcc libc6-dev >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq gcc libc6-dev; }; }
	@mkdir -p $(dir $@)
	gcc -O2 -Wall -Wextra -Wno-unused-parameter -shared -fPIC -I$(NODE_INCLUDE) -o $@ $<

.PHONY: native
native: $(NATIVE_OUT) ## The sidecar's C addon for socket I/O (ADR 0022; needs gcc, installed from Debian if missing)

.PHONY: crds
crds: build ## Generate crds/*.yaml and charts/dbward/crds/ from the zod schemas
	node operator/dist/crd/generate.js

.PHONY: clean
clean: ## Remove build output (keeps .tools and node_modules)
	rm -rf sidecar/dist operator/dist sidecar/native/build $(REPORT_DIR)
