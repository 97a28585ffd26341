# Two commands on a fresh machine:  `make demo` (set up + run the offline demo pipeline)
# and `make test` (set up + run the tests). Everything installs into .venv from pyproject.toml.
VENV ?= .venv
PYTHON ?= python3
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)

.PHONY: install demo test lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	dvc repro
	dvc metrics show

test: lint
	python -m pytest

lint: install
	ruff check .
	ruff format --check .

clean:
	rm -rf data features models reports/train
