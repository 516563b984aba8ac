# rmt — see README.md. `make demo` and `make test` work on a fresh Debian machine as root.
GO       ?= go
BIN      := bin/rmtd
PKGS     := ./...
TESTTIME ?= 25m

.PHONY: all build test fuzz demo bench lint deps clean image

all: build

# deps installs the servers the tests and the demo start (redis-server, redis-cli, nutcracker).
deps:
	@./scripts/deps.sh

build:
	$(GO) build -o $(BIN) ./cmd/rmtd

# Fuzz runs are bounded by executions, not time: a time-bounded run can end with a spurious
# "context deadline exceeded" when the deadline falls while a worker handles a new input.
# FUZZRUNS for the cheapest targets; FUZZSHORT for the others, whose inputs cost more.
FUZZRUNS  ?= 100000
FUZZSHORT ?= 20000

test: deps
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout $(TESTTIME) $(PKGS)
	@# The Kubernetes manifests, against the official API types (a module of its own).
	cd deploy/kubernetes && $(GO) vet ./... && $(GO) test -count=1 ./...
	$(MAKE) fuzz

# fuzz runs the fuzz targets for a bounded number of runs each on top of their seed corpora;
# `make test` ends with it. A crasher goes to the package's
# testdata/fuzz, where plain `go test` replays it from then on.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecoder$$' -fuzztime $(FUZZRUNS)x -fuzzminimizetime 2s ./rdb
	$(GO) test -run '^$$' -fuzz '^FuzzLZF$$' -fuzztime $(FUZZRUNS)x -fuzzminimizetime 2s ./rdb
	$(GO) test -run '^$$' -fuzz '^FuzzReader$$' -fuzztime $(FUZZRUNS)x -fuzzminimizetime 2s ./aof
	$(GO) test -run '^$$' -fuzz '^FuzzManifest$$' -fuzztime $(FUZZRUNS)x -fuzzminimizetime 2s ./aof
	$(GO) test -run '^$$' -fuzz '^FuzzBigReader$$' -fuzztime $(FUZZSHORT)x -fuzzminimizetime 2s ./aof
	$(GO) test -run '^$$' -fuzz '^FuzzCopier$$' -fuzztime $(FUZZSHORT)x -fuzzminimizetime 2s ./aof
	$(GO) test -run '^$$' -fuzz '^FuzzKeys$$' -fuzztime $(FUZZSHORT)x -fuzzminimizetime 2s ./aof
	$(GO) test -run '^$$' -fuzz '^FuzzParseNodes$$' -fuzztime $(FUZZRUNS)x -fuzzminimizetime 2s ./internal/topology
	$(GO) test -run '^$$' -fuzz '^FuzzParsePSYNCReply$$' -fuzztime $(FUZZSHORT)x -fuzzminimizetime 2s ./source
	$(GO) test -run '^$$' -fuzz '^FuzzCopyUntilMark$$' -fuzztime $(FUZZSHORT)x -fuzzminimizetime 2s ./source
	$(GO) test -run '^$$' -fuzz '^FuzzScanConnReply$$' -fuzztime $(FUZZSHORT)x -fuzzminimizetime 2s ./source
	$(GO) test -run '^$$' -fuzz '^FuzzReadReply$$' -fuzztime $(FUZZSHORT)x -fuzzminimizetime 2s ./target
	$(GO) test -run '^$$' -fuzz '^FuzzParseClusterNodes$$' -fuzztime $(FUZZSHORT)x -fuzzminimizetime 2s ./target
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZSHORT)x -fuzzminimizetime 2s ./conf
	$(GO) test -run '^$$' -fuzz '^FuzzLoadRMTConf$$' -fuzztime $(FUZZSHORT)x -fuzzminimizetime 2s ./conf
	$(GO) test -run '^$$' -fuzz '^FuzzMatch$$' -fuzztime $(FUZZSHORT)x -fuzzminimizetime 2s ./internal/glob
	$(GO) test -run '^$$' -fuzz '^FuzzKey$$' -fuzztime $(FUZZSHORT)x -fuzzminimizetime 2s ./internal/shard
	$(GO) test -run '^$$' -fuzz '^FuzzParseServer$$' -fuzztime $(FUZZSHORT)x -fuzzminimizetime 2s ./internal/shard
	@# INFO's renderer builds a whole snapshot per input: fewer of them.
	$(GO) test -run '^$$' -fuzz '^FuzzRenderInfo$$' -fuzztime 10000x -fuzzminimizetime 2s ./daemon/status
	@# Over real TCP (the admin port) or a fake master's socket (the replica link): each input
	@# is a connection, so fewer of them.
	$(GO) test -run '^$$' -fuzz '^FuzzAdminPort$$' -fuzztime 2000x -fuzzminimizetime 2s ./daemon/admin
	$(GO) test -run '^$$' -fuzz '^FuzzLinkMaster$$' -fuzztime 500x -fuzzminimizetime 2s ./source

# image builds the container image (Dockerfile): a static rmtd on scratch, nothing else needed.
IMAGE ?= rmtd:latest
image:
	rm -rf bin/image && mkdir -p bin/image/etc bin/image/data
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o bin/image/rmtd ./cmd/rmtd
	cp deploy/docker/passwd deploy/docker/group bin/image/etc/
	docker build -t $(IMAGE) .

demo: deps build
	./scripts/demo.sh

bench: deps build
	./scripts/bench.sh

lint:
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@latest $(PKGS)

clean:
	rm -rf bin demo
