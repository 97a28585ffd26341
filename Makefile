# Two commands on a fresh machine:  `make demo` (set up + run the offline demo pipeline)
# and `make test` (set up + run the tests). Everything installs into .venv from pyproject.toml.
VENV ?= .venv
PYTHON ?= python3
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)

.PHONY: install bytecode demo test lint deps clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# The project's bytecode, written once: every stage and command is a fresh process, and where
# PYTHONDONTWRITEBYTECODE is set (containers, CI) each would compile the modules it imports again
bytecode: install
	python -m compileall -q actrec pipeline benchmarks tests tools

demo: bytecode
	dvc repro
	@echo
	@actrec report

test: lint bytecode
	python -m pytest

# dvc.yaml's code deps, written from each stage's import closure (tests/stages/test_dvc_yaml.py checks them)
deps: install
	python -m tools.dvc_deps

lint: install
	ruff check .
	ruff format --check .

clean:
	rm -rf data features models reports/train
