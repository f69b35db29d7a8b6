# casbo-bench: the two commands of the README, and the project's checks.
#
#   make reproduce   create .venv, install, run the default workflow (config/config.yaml)
#   make test        create .venv if needed, run the tests
#   make figures     every table, the ledger and every figure of a published archive, rebuilt
#                    from the archive alone (ARCHIVE, default published/paper-local)
#
# torch is installed first and pinned: letting pip resolve it from the other requirements
# may pull a multi-GB CUDA build.

PYTHON ?= python3
VENV ?= .venv
CORES ?= 2
CONFIG ?= config/config.yaml
ARCHIVE ?= published/paper-local
BIN := $(VENV)/bin
# Rules run `python -m casbo_bench`: the venv's interpreter must come first on PATH.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: reproduce rerun-failed faults figures test venv lint clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

# A lock left by a killed run is released first (scripts/release_stale_lock.py); a live
# run's lock is not.
reproduce: venv
	$(BIN)/python scripts/release_stale_lock.py --configfile $(CONFIG)
	$(BIN)/snakemake --cores $(CORES) --configfile $(CONFIG)

# Runs again every seed a job recorded as failed (status column of the trace), then
# everything downstream of it.
rerun-failed: venv
	CASBO_RERUN_FAILED=1 $(BIN)/snakemake --cores $(CORES) --configfile $(CONFIG)

# The fault suite alone (tests/faults), with its count table.
faults: venv
	$(BIN)/python -m pytest tests/faults -q

# Writes results/<name>-archive and paper_figures/<name>-archive, never the run's own folders;
# runs no optimizer.
figures: venv
	$(BIN)/python -m casbo_bench regenerate --archive $(ARCHIVE) \
		--results-out results/$(notdir $(ARCHIVE))-archive \
		--figures-out paper_figures/$(notdir $(ARCHIVE))-archive

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
