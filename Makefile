# rmt — see README.md. `make demo` and `make test` work on a fresh Debian machine as root.
GO       ?= go
BIN      := bin/rmtd
PKGS     := ./...
TESTTIME ?= 25m

.PHONY: all build test demo bench lint deps clean image

all: build

# deps installs the servers the tests and the demo start (redis-server, redis-cli, nutcracker).
deps:
	@./scripts/deps.sh

build:
	$(GO) build -o $(BIN) ./cmd/rmtd

# Fuzz runs are bounded by executions, not time: a time-bounded run can end with a spurious
# "context deadline exceeded" when the deadline falls while a worker handles a new input.
FUZZRUNS ?= 100000

test: deps
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout $(TESTTIME) $(PKGS)
	@# The Kubernetes manifests, against the official API types (a module of its own).
	cd deploy/kubernetes && $(GO) vet ./... && $(GO) test -count=1 ./...
	@# The parsers of untrusted input, fuzzed for a bounded number of runs on top of their seed corpora.
	$(GO) test -run '^$$' -fuzz '^FuzzDecoder$$' -fuzztime $(FUZZRUNS)x -fuzzminimizetime 2s ./rdb
	$(GO) test -run '^$$' -fuzz '^FuzzLZF$$' -fuzztime $(FUZZRUNS)x -fuzzminimizetime 2s ./rdb
	$(GO) test -run '^$$' -fuzz '^FuzzReader$$' -fuzztime $(FUZZRUNS)x -fuzzminimizetime 2s ./aof
	$(GO) test -run '^$$' -fuzz '^FuzzManifest$$' -fuzztime $(FUZZRUNS)x -fuzzminimizetime 2s ./aof
	$(GO) test -run '^$$' -fuzz '^FuzzParseNodes$$' -fuzztime $(FUZZRUNS)x -fuzzminimizetime 2s ./internal/topology
	@# The admin port over real TCP: each input is a connection, so fewer of them.
	$(GO) test -run '^$$' -fuzz '^FuzzAdminPort$$' -fuzztime 2000x -fuzzminimizetime 2s ./daemon/admin

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
