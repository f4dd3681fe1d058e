# jobengine — build, test and package.
GO        ?= go
BIN       := bin/jobengine
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/jobengine/jobengine/engine/version.Version=$(VERSION)
# The binaries as the packages ship them: static (no cgo, so no libc
# dependency), position-independent (ASLR) and stripped (-s -w in LDFLAGS).
# BUILDFLAGS adds flags to every build (make dev passes -v).
BUILDFLAGS ?=
GOBUILD   := CGO_ENABLED=0 $(GO) build -trimpath -buildmode=pie $(BUILDFLAGS)
PKGS      := ./...
# The plugin SDK is a module of its own: ./... of the main module does not
# reach it, so lint and test visit it too.
SDK       := actions/sdk
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.6.1

.PHONY: all build plugins deps dev test test-unit test-faults test-faults-release test-soak bench lint generate packages clean

all: build

build:
	$(GOBUILD) -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/jobengine

# The example plugin, as the packages ship it.
plugins:
	$(GOBUILD) -ldflags '-s -w' -o bin/actions/hello ./actions/examples/hello

deps:
	./scripts/deps.sh

# A complete local system in the foreground: ZooKeeper, an executor and the
# demo distributor. Ctrl-C stops it. A first build downloads and compiles
# every dependency, which takes minutes on a small machine: the go command
# lists the modules it downloads and (-v) the packages it compiles.
dev: deps
	@echo "building $(BIN) and the example plugin; a first build takes a few minutes, packages are listed as they compile" >&2
	@$(MAKE) --no-print-directory build plugins BUILDFLAGS=-v
	$(BIN) dev --plugin-dir bin/actions

# Everything CI runs: the checks of lint; unit, integration (real
# ZooKeeper, real processes), end-to-end and interoperability tests; then
# the default fault-injection suite (docs/faults.md, about 3 minutes),
# which prints its seed first. A seed that fails is a bug report: replay it
# with make test-faults FAULTS_ARGS='-faults.seed=N'.
test: deps build plugins lint
	$(GO) test -count=1 -timeout 30m $(PKGS)
	cd $(SDK) && $(GO) test -count=1 -timeout 10m ./...
	$(MAKE) --no-print-directory test-faults

# Quick layer: unit tests and short integration tests.
test-unit: deps
	$(GO) test -count=1 -short -timeout 10m $(PKGS)
	cd $(SDK) && $(GO) test -count=1 -short -timeout 10m ./...

# The fault-injection suite (docs/faults.md): about 3 minutes by default.
# FAULTS_ARGS passes flags to it, e.g. FAULTS_ARGS='-faults.seed=1' to replay
# a schedule, or the release size:
# FAULTS_ARGS='-faults.jobs=5000 -faults.executors=5 -faults.duration=10m -faults.faults=30'
test-faults: deps
	$(GO) test -count=1 -v -timeout 60m -run 'TestFault' -tags faults ./internal/testing/faults/ $(if $(FAULTS_ARGS),-args $(FAULTS_ARGS))

# The release run of the fault suite (docs/faults.md): the release size
# once per seed of RELEASE_SEEDS (30 faults each, every kind), each kept in
# RELEASE_OUT/seed-N (the seeds of an earlier run there are removed first);
# every seed runs even when one fails, and the target
# fails if any did. About 11 minutes a seed on 2 cores. The last step
# prints the recovery times per fault kind over every seed's report.
RELEASE_SEEDS ?= 101 202 303 404
RELEASE_ARGS  ?= -faults.jobs=5000 -faults.executors=5 -faults.duration=10m -faults.faults=30
RELEASE_OUT   ?= $(CURDIR)/faults-release
test-faults-release: deps
	@rm -rf $(RELEASE_OUT)/seed-*; mkdir -p $(RELEASE_OUT); failed=""; \
	for s in $(RELEASE_SEEDS); do \
	  $(GO) test -count=1 -v -timeout 60m -run 'TestFaultInjection$$' -tags faults ./internal/testing/faults/ \
	    -args $(RELEASE_ARGS) -faults.seed=$$s -faults.out=$(RELEASE_OUT)/seed-$$s || failed="$$failed $$s"; \
	done; \
	$(GO) test -count=1 -v -run 'TestFaultSummary$$' -tags faults ./internal/testing/faults/ -args -faults.summarize=$(RELEASE_OUT); \
	if [ -n "$$failed" ]; then echo "release run: seeds$$failed failed (evidence in $(RELEASE_OUT))" >&2; exit 1; fi

# The soak (docs/faults.md, "The soak"): an hour at half the measured
# throughput with a fault every 30 s, the kinds in turn; every daemon's
# memory and goroutines sampled every minute and judged flat at the end,
# the outbox and the notification queue drained. SOAK_ARGS passes flags,
# e.g. SOAK_ARGS='-soak.duration=10m -soak.sample=15s -faults.seed=3'.
# The evidence is kept in SOAK_OUT (a new directory each run).
SOAK_OUT ?= $(CURDIR)/soak-out/$(shell date +%Y%m%d-%H%M%S)
test-soak: deps
	$(GO) test -count=1 -v -timeout 3h -run 'TestSoak$$' -tags faults ./internal/testing/faults/ -args -soak -faults.out=$(SOAK_OUT) $(SOAK_ARGS)

# The benchmarks of docs/benchmarks.md, on a scratch ZooKeeper of their own.
bench: deps build
	./scripts/bench.sh

# go.mod and go.sum tidy, go vet and staticcheck, over the files of every
# build tag (faults is the only one), in the main module and the SDK's.
lint:
	$(GO) mod tidy -diff
	$(GO) vet -tags faults $(PKGS)
	$(GO) run $(STATICCHECK) -tags faults $(PKGS)
	cd $(SDK) && $(GO) mod tidy -diff
	cd $(SDK) && $(GO) vet ./...
	cd $(SDK) && $(GO) run $(STATICCHECK) ./...

generate:
	./scripts/deps.sh protoc
	$(GO) generate ./...

packages: build plugins
	./packaging/build.sh $(VERSION)

clean:
	rm -rf bin dist
