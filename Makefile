# Two commands on a fresh clone: `make reproduce` (the quick reproduction on all cores) and
# `make test` (ruff and mypy, then the default test suite, deterministic: the same examples on every run). Each
# creates .venv on first use with the README's pip command; later runs reuse it (it is rebuilt
# when setup.cfg or pyproject.toml change). `make test-explore` lets hypothesis explore.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: reproduce test test-explore clean-venv

$(BIN)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	. $(BIN)/activate && pip install -e ".[test]"
	touch $@

reproduce: $(BIN)/.installed
	$(BIN)/failgeom reproduce --preset quick

test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

# the same suite, with hypothesis drawing fresh examples on every run (see tests/conftest.py)
test-explore: $(BIN)/.installed
	HYPOTHESIS_PROFILE=explore $(BIN)/pytest

clean-venv:
	rm -rf $(VENV)
