# bluezoned: `make demo` runs the end-to-end demo, `make test` runs every check.
# Needs only python3 (>= 3.11, with its venv module) and make; everything else comes from PyPI.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: all install test lint typecheck unit bench accuracy demo proto clean check-python

all: test

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || \
	  { echo "bluezoned needs Python >= 3.11 as '$(PYTHON)' (set PYTHON=...)"; exit 1; }
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || \
	  { echo "missing system package: python3-venv (apt-get install python3-venv)"; exit 1; }
	@command -v dbus-daemon >/dev/null || \
	  echo "note: dbus-daemon not found (apt-get install dbus-daemon): the radio tests will be skipped"

$(STAMP): pyproject.toml | check-python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check bluezoned tests bench
	$(BIN)/ruff format --check bluezoned tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python bench/bench_keys.py
	$(BIN)/python bench/bench_store.py
	$(BIN)/python bench/bench_match.py
	$(BIN)/python bench/bench_radio.py
	$(BIN)/python bench/bench_sync_day.py
	$(BIN)/python bench/bench_analyze.py

# The accuracy evaluation on the real RSSI datasets in ../shared/data/rssi (read in place).
accuracy: $(STAMP)
	$(BIN)/python -m bench.accuracy

demo: $(STAMP)
	$(BIN)/bluezoned demo

# Regenerate the protobuf module from the vendored schema (tests check it is current).
proto: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -I bluezoned/exposure/proto \
	  --python_out=bluezoned/exposure/proto --pyi_out=bluezoned/exposure/proto \
	  bluezoned/exposure/proto/export.proto

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
