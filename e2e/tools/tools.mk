# e2e/tools/tools.mk -- builds the real infrastructure binaries the e2e tests need.
#
# Include it from the repository-root Makefile (make runs from the repo root):
#
#     include e2e/tools/tools.mk
#
# Targets:
#     tools         all of the below
#     tools-kube    e2e/tools/bin/kube-apiserver, e2e/tools/bin/kubectl
#     tools-etcd    e2e/tools/bin/etcd
#     tools-helm    e2e/tools/bin/helm
#     tools-jaeger  e2e/tools/bin/jaeger
#     tools-check   version + smoke start of every binary (e2e/tools/check.sh)
#     tools-clean   removes e2e/tools/bin
#
# Each tool family is a wrapper Go module (e2e/tools/<family>/go.mod + go.sum);
# the pinned versions live there and nowhere else.  A binary is (re)built only
# when it is missing or older than its module's go.mod/go.sum.
#
# Settings (see e2e/tools/README.md for the reasoning):
#   * GOFLAGS=-mod=readonly: a build never edits go.mod/go.sum; change versions
#     with `go get`/`go mod tidy` in the wrapper module and commit the result.
#   * Caches: the ordinary per-user GOCACHE / GOMODCACHE (shared by every work
#     tree on the machine and kept between sessions; a repo-local .cache/ would
#     be thrown away with each fresh work tree and re-download ~1 GiB).  To use
#     repo-local caches anyway:  make tools TOOLS_LOCAL_CACHE=1
#   * CGO_ENABLED=0 (static binaries, as upstream ships them), -trimpath,
#     -buildvcs=false, -ldflags '-s -w' + fixed version strings: the output
#     depends only on go.mod/go.sum and the Go release, not on the work tree,
#     the clock or the dbward commit.
#   * 2 cores: `go build -p $(TOOLS_GO_P)` and a flock on bin/.build.lock, so
#     even `make -j` or two concurrent makes run one big go build at a time.

TOOLS_DIR := $(CURDIR)/e2e/tools
TOOLS_BIN := $(CURDIR)/e2e/tools/bin
export TOOLS_BIN

TOOLS_GO   ?= go
# make TOOLS_V=1 prints the full go build command lines
TOOLS_V    ?=
TOOLS_Q    := $(if $(TOOLS_V),,@)
TOOLS_GO_P ?= 2

ifeq ($(TOOLS_LOCAL_CACHE),1)
TOOLS_CACHE_ENV := GOCACHE=$(CURDIR)/.cache/go-build GOMODCACHE=$(CURDIR)/.cache/gomod
else
TOOLS_CACHE_ENV :=
endif

# GOFLAGS in the environment replaces (not extends) `go env -w GOFLAGS`, so
# -buildvcs=false is repeated here: without it the wrapper module would be
# stamped with the dbward git commit and the binaries would change per commit.
TOOLS_GOENV := GOFLAGS='-mod=readonly -buildvcs=false' GOTOOLCHAIN=local GOWORK=off \
	CGO_ENABLED=0 $(TOOLS_CACHE_ENV)
TOOLS_FLOCK := $(shell command -v flock >/dev/null 2>&1 && echo 'flock $(TOOLS_BIN)/.build.lock')
TOOLS_BUILD := $(TOOLS_GOENV) $(TOOLS_FLOCK) $(TOOLS_GO) build -p $(TOOLS_GO_P) -trimpath

# $(call tools_ver,FAMILY,MODULE): version of MODULE pinned in the wrapper
# module FAMILY.  Expanded only inside recipes (never at parse time).
tools_ver = $$(cd $(TOOLS_DIR)/$(1) && $(TOOLS_GOENV) $(TOOLS_GO) list -m -f '{{.Version}}' $(2))
# $(call tools_date,FAMILY,MODULE): release time of MODULE (used as a
# reproducible build date instead of `date`).
tools_date = $$(cd $(TOOLS_DIR)/$(1) && $(TOOLS_GOENV) $(TOOLS_GO) list -m \
	-f '{{with .Time}}{{.UTC.Format "2006-01-02T15:04:05Z"}}{{else}}1970-01-01T00:00:00Z{{end}}' $(2))

TOOLS_KUBE_MOD   := $(TOOLS_DIR)/kube/go.mod $(TOOLS_DIR)/kube/go.sum
TOOLS_ETCD_MOD   := $(TOOLS_DIR)/etcd/go.mod $(TOOLS_DIR)/etcd/go.sum
TOOLS_HELM_MOD   := $(TOOLS_DIR)/helm/go.mod $(TOOLS_DIR)/helm/go.sum
TOOLS_JAEGER_MOD := $(TOOLS_DIR)/jaeger/go.mod $(TOOLS_DIR)/jaeger/go.sum

TOOLS_ALL := $(TOOLS_BIN)/kube-apiserver $(TOOLS_BIN)/kubectl $(TOOLS_BIN)/etcd \
	$(TOOLS_BIN)/helm $(TOOLS_BIN)/jaeger

.PHONY: tools tools-kube tools-etcd tools-helm tools-jaeger tools-check tools-clean
tools: $(TOOLS_ALL) ## Build the e2e infrastructure binaries into e2e/tools/bin (Go, from the module proxy)
tools-kube: $(TOOLS_BIN)/kube-apiserver $(TOOLS_BIN)/kubectl ## Build kube-apiserver and kubectl
tools-etcd: $(TOOLS_BIN)/etcd ## Build etcd
tools-helm: $(TOOLS_BIN)/helm ## Build helm
tools-jaeger: $(TOOLS_BIN)/jaeger ## Build jaeger (v2)

tools-check: $(TOOLS_ALL) ## Version + smoke start of every e2e tool (e2e/tools/check.sh)
	TOOLS_BIN=$(TOOLS_BIN) $(TOOLS_DIR)/check.sh

tools-clean: ## Remove e2e/tools/bin
	rm -rf $(TOOLS_BIN)

# Binaries are linked to $@.tmp and renamed, so an interrupted build never
# leaves a half-written file that make would take as up to date.

# kube-apiserver, kubectl: version strings as set by kubernetes' hack/lib/version.sh.
# The module proxy carries no git commit, so gitCommit is left empty.
$(TOOLS_BIN)/kube-apiserver $(TOOLS_BIN)/kubectl: $(TOOLS_KUBE_MOD)
	@mkdir -p $(TOOLS_BIN)
	@echo 'tools: go build $(notdir $@) (module e2e/tools/$(notdir $(patsubst %/,%,$(dir $<))))'
	$(TOOLS_Q)cd $(TOOLS_DIR)/kube && \
	v=$(call tools_ver,kube,k8s.io/kubernetes) && d=$(call tools_date,kube,k8s.io/kubernetes) && \
	maj=$${v#v} && maj=$${maj%%.*} && min=$${v#v*.} && min=$${min%%.*} && \
	ld='-s -w' && \
	for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do \
	  ld="$$ld -X $$p.gitVersion=$$v -X $$p.gitMajor=$$maj -X $$p.gitMinor=$$min \
	      -X $$p.gitCommit= -X $$p.gitTreeState=clean -X $$p.buildDate=$$d"; \
	done && \
	$(TOOLS_BUILD) -ldflags "$$ld" -o $@.tmp k8s.io/kubernetes/cmd/$(notdir $@) && \
	mv -f $@.tmp $@

# etcd: the version is a constant in go.etcd.io/etcd/api/v3/version; only the
# git SHA is an ldflag.
$(TOOLS_BIN)/etcd: $(TOOLS_ETCD_MOD)
	@mkdir -p $(TOOLS_BIN)
	@echo 'tools: go build $(notdir $@) (module e2e/tools/$(notdir $(patsubst %/,%,$(dir $<))))'
	$(TOOLS_Q)cd $(TOOLS_DIR)/etcd && \
	$(TOOLS_BUILD) -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=go-module" \
	  -o $@.tmp go.etcd.io/etcd/server/v3 && \
	mv -f $@.tmp $@

$(TOOLS_BIN)/helm: $(TOOLS_HELM_MOD)
	@mkdir -p $(TOOLS_BIN)
	@echo 'tools: go build $(notdir $@) (module e2e/tools/$(notdir $(patsubst %/,%,$(dir $<))))'
	$(TOOLS_Q)cd $(TOOLS_DIR)/helm && \
	v=$(call tools_ver,helm,helm.sh/helm/v4) && \
	$(TOOLS_BUILD) -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$$v \
	  -X helm.sh/helm/v4/internal/version.gitTreeState=clean" \
	  -o $@.tmp helm.sh/helm/v4/cmd/helm && \
	mv -f $@.tmp $@

# jaeger: the Go module carries the v1.x tag; the v2 binary reports the paired
# v2.x tag (JAEGER_V2_VERSION in jaeger/versions.mk, next to its go.mod).
include $(TOOLS_DIR)/jaeger/versions.mk
$(TOOLS_BIN)/jaeger: $(TOOLS_JAEGER_MOD) $(TOOLS_DIR)/jaeger/versions.mk
	@mkdir -p $(TOOLS_BIN)
	@echo 'tools: go build $(notdir $@) (module e2e/tools/$(notdir $(patsubst %/,%,$(dir $<))))'
	$(TOOLS_Q)cd $(TOOLS_DIR)/jaeger && \
	d=$(call tools_date,jaeger,github.com/jaegertracing/jaeger) && \
	$(TOOLS_BUILD) -ldflags "-s -w \
	  -X github.com/jaegertracing/jaeger/internal/version.latestVersion=$(JAEGER_V2_VERSION) \
	  -X github.com/jaegertracing/jaeger/internal/version.date=$$d" \
	  -o $@.tmp github.com/jaegertracing/jaeger/cmd/jaeger && \
	mv -f $@.tmp $@
