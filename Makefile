# Two entry points for a fresh machine with only Python installed:
#   make demo   set everything up, then run the whole pipeline on the built-in synthetic dataset
#   make test   set everything up, then lint and run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
TORCH_VERSION ?= 2.13.0

.PHONY: setup demo test test-all lint bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first and pinned: an unpinned torch pulls several GB of CUDA packages.
	$(PIP) install --quiet "torch==$(TORCH_VERSION)"
	$(PIP) install --quiet -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/darkaction demo

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	cd src && ../$(VENV)/bin/lint-imports --config ../pyproject.toml --no-cache

test: setup lint
	$(PY) -m pytest -q

test-all: setup lint
	$(PY) -m pytest -q -m ""

bench: setup
	$(VENV)/bin/darkaction bench

clean:
	rm -rf $(VENV) .pytest_cache runs prepared data/synth
