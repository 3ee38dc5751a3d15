# lossd: every target installs what it needs into .venv first, from nothing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint proto proto-check clean clean-cache

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

## test: the whole test suite (real servers on free loopback ports)
test: install
	$(BIN)/python -m pytest -q

## lint: ruff on everything, mypy on the SDK
lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy client/lossd_client

## proto: regenerate the committed gRPC/protobuf code with the pinned grpcio-tools
proto: install
	$(BIN)/python tools/gen_proto.py

proto-check: install
	$(BIN)/python tools/gen_proto.py --check

## clean-cache: drop Numba's on-disk cache (needed after editing kernels/stable.py)
clean-cache:
	find service -name '*.nbi' -delete -o -name '*.nbc' -delete

clean: clean-cache
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
