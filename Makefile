# lossd: every target installs what it needs into .venv first, from nothing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint proto proto-check clean clean-cache test-container hadolint up down bench \
        fuzz load boundscheck

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python client/pyproject.toml service/pyproject.toml requirements-dev.txt
	$(BIN)/python -m pip install --quiet -e client -e service -r requirements-dev.txt
	touch $@

install: $(STAMP)

## run: start the service with its defaults (gRPC 127.0.0.1:50051, HTTP 127.0.0.1:8080)
run: install
	$(BIN)/lossd serve

## test: the whole test suite (real servers on free loopback ports); a cold Numba cache is first
## compiled in one process per core (lossd warm)
test: install
	$(BIN)/lossd warm
	$(BIN)/python -m pytest -q

## fuzz: the long hypothesis run of the decoders and validators (LOSSD_FUZZ_EXAMPLES per target)
fuzz: install
	LOSSD_FUZZ_PROFILE=long $(BIN)/python -m pytest -q -s tests/fuzz/test_fuzz.py

## load: 60 s each with 16 and 64 concurrent clients against a fresh server (figures as JSON lines)
load: install
	$(BIN)/python -m tests.load.driver --seconds 60 --clients 16 64

## boundscheck: the float64 loss tests with NUMBA_BOUNDSCHECK=1 (own temporary Numba cache; ~2 min)
boundscheck: install
	LOSSD_BOUNDSCHECK=1 $(BIN)/python -m pytest -q -s tests/fuzz/test_boundscheck.py

## lint: ruff on everything, mypy on the SDK
lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy client/lossd_client

## test-container: build the image with podman (../shared/container/podman-env.sh) and test it
test-container: install
	bash deploy/test-container.sh

## hadolint: lint deploy/Dockerfile
hadolint: install
	$(BIN)/hadolint deploy/Dockerfile

## up / down: lossd + Prometheus + Grafana (deploy/compose.yaml; docker compose or podman compose)
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo docker compose || echo podman compose)
up:
	$(COMPOSE) -f deploy/compose.yaml up -d --build

down:
	$(COMPOSE) -f deploy/compose.yaml down

## proto: regenerate the committed gRPC/protobuf code with the pinned grpcio-tools
proto: install
	$(BIN)/python tools/gen_proto.py

proto-check: install
	$(BIN)/python tools/gen_proto.py --check

## bench: the benchmark suite -> bench/RESULTS.md + bench/plots/ (BENCH_QUICK=1: shorter).
## Optional bench-only deps (never test deps): torch and matplotlib in .venv; MLServer, the
## peer, in its own venv bench/.venv-peer so its pins cannot touch ours.
BENCH_DEPS := torch==2.13.0 matplotlib
PEER_DEPS  := mlserver==1.7.1 'tritonclient[grpc]' 'uvloop<0.22'
bench: install
	$(BIN)/python -m pip install --quiet $(BENCH_DEPS)
	test -x bench/.venv-peer/bin/mlserver || { $(PYTHON) -m venv bench/.venv-peer && \
		bench/.venv-peer/bin/python -m pip install --quiet $(PEER_DEPS); }
	$(BIN)/python -m bench.run

## clean-cache: drop Numba's in-tree on-disk cache (never needed for correctness: entries of a kernel
## go stale when its module or any helper module changes, see service/lossd/kernels/jitcache.py)
clean-cache:
	find service -name '*.nbi' -delete -o -name '*.nbc' -delete -o -name '*.lossd-imported' -delete

clean: clean-cache
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
