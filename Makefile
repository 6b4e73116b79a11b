# One command to set up and run the demo, one to set up and run the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup demo test test-slow bench reproduce reproduce-quick clean

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

reproduce-quick: setup  ## every paper example, reduced sizes (~15 min on 2 cores) -> reproduce-quick/report.html
	$(BIN)/insr reproduce --quick

reproduce: setup  ## every paper example at the paper's horizons (hours on 2 cores) -> reproduce-full/report.html
	$(BIN)/insr reproduce

clean:
	rm -rf $(VENV) runs .pytest_cache reproduce-quick reproduce-full
