# One command to set up and run the demo, one to set up and run the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup demo test test-slow bench clean

$(BIN)/insr: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

setup: $(BIN)/insr

demo: setup  ## the paper's 1D advection, written to runs/demo
	$(BIN)/insr run advection1d --out runs/demo --force

test: setup  ## the default suite (slow checks excluded)
	$(BIN)/pytest -q

test-slow: setup  ## only the slow checks
	$(BIN)/pytest -q -m slow

bench: setup
	cd benchmarks && ../$(BIN)/python advection1d.py

clean:
	rm -rf $(VENV) runs .pytest_cache
