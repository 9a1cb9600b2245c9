# The two commands of the README: `make demo` and `make test`. Both build from a fresh clone:
# a .venv, the Rust extension in release mode, secmon installed editable, then the job.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BUILD_STAMP := $(VENV)/.secmon-built
RUST_SOURCES := $(shell find rust_core -name '*.rs') Cargo.toml
PY_DEPS := pyproject.toml

.PHONY: all build demo test test-rust test-python bench bench-smoke lint clean

all: build

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip "maturin>=1.8,<2"

# Rebuild the extension (and reinstall dependencies) only when Rust sources or pyproject change.
$(BUILD_STAMP): $(PY) $(RUST_SOURCES) $(PY_DEPS)
	VIRTUAL_ENV=$(abspath $(VENV)) PATH=$(abspath $(VENV))/bin:$$PATH \
		$(VENV)/bin/maturin develop --release --extras dev --quiet
	touch $@

# Byte-compile as a wheel install would (an editable install does not, and with
# PYTHONDONTWRITEBYTECODE set every command would compile its modules again: 12 ms of a
# `secmon fim baseline`). compileall skips files that are up to date.
build: $(BUILD_STAMP)
	$(PY) -m compileall -q -x "/\.venv" secmon benchmarks

demo: build
	$(VENV)/bin/secmon demo

test: build test-rust test-python

test-rust:
	cargo test --quiet --lib

test-python: build
	$(PY) -m pytest -q

# Full benchmark run (minutes); the table it prints goes into the README.
bench: build
	$(PY) -m benchmarks.run

bench-smoke: build
	$(PY) -m benchmarks.run --smoke

clean:
	rm -rf $(VENV) target
	find . -name __pycache__ -prune -exec rm -rf {} +
	rm -f secmon/_core*.so
