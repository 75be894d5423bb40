# Two commands on a fresh clone: `make reproduce` (the quick reproduction on all cores) and
# `make test` (the default test suite). Each creates .venv on first use with the README's pip
# command; later runs reuse it (it is rebuilt when setup.cfg or pyproject.toml change).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: reproduce test clean-venv

$(BIN)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	. $(BIN)/activate && pip install -e ".[test]"
	touch $@

reproduce: $(BIN)/.installed
	$(BIN)/failgeom reproduce --preset quick

test: $(BIN)/.installed
	$(BIN)/pytest

clean-venv:
	rm -rf $(VENV)
