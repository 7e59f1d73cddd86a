# kanta-guard: `make web` starts the guard with the mitmweb dashboard, `make test` runs the tests.
# Both create the virtual environment (.venv, Python 3.12 from pyenv) on first use.

PYTHON ?= $(shell pyenv which python 2>/dev/null || command -v python3.12 || echo python3.12)
VENV := .venv
STAMP := $(VENV)/.installed-stamp
ARGS ?=

.PHONY: web run test lint bench fuzz clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 12), "kanta-guard needs Python >= 3.12, got " + sys.version'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $(STAMP)

web: $(STAMP)
	$(VENV)/bin/kanta-guard web $(ARGS)

run: $(STAMP)
	$(VENV)/bin/kanta-guard run $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest

bench: $(STAMP)
	$(VENV)/bin/python bench/benchmark.py $(ARGS)

# Coverage-guided fuzzing of the scan (atheris); RUNS inputs, slow ones (> 10 s) count as failures.
RUNS ?= 1000000
fuzz: $(STAMP)
	$(VENV)/bin/pip install --quiet 'atheris>=2.3'
	$(VENV)/bin/python fuzz/fuzz_scan.py -atheris_runs=$(RUNS) -max_len=65536 -timeout=10 fuzz/corpus $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
