# casbo-bench: the two commands of the README, and the project's checks.
#
#   make reproduce   create .venv, install, run the default workflow (config/config.yaml)
#   make test        create .venv if needed, run the tests
#
# torch is installed first and pinned: letting pip resolve it from the other requirements
# may pull a multi-GB CUDA build.

PYTHON ?= python3
VENV ?= .venv
CORES ?= 2
CONFIG ?= config/config.yaml
BIN := $(VENV)/bin
# Rules run `python -m casbo_bench`: the venv's interpreter must come first on PATH.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: reproduce test venv lint clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

reproduce: venv
	$(BIN)/snakemake --cores $(CORES) --configfile $(CONFIG)

test: venv
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint

clean:
	rm -rf .snakemake
