# One command to set up and run the demo, one to set up and run the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup demo test lint test-slow bench seeds reproduce reproduce-quick lock clean

# constraints.txt pins the tested versions (see its header for the update policy).
$(BIN)/insr: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	@touch $@

setup: $(BIN)/insr

demo: setup  ## the paper's 1D advection, written to runs/demo
	$(BIN)/insr run advection1d --out runs/demo --force

# The suite runs in TEST_WORKERS processes (pytest-xdist): most of its time is XLA compiling,
# one core per process, so 2 workers on 2 cores took it from 522 s to 338 s.
TEST_WORKERS ?= 2

# --dist loadfile keeps a test file on one worker: its tests build the same scenarios one after
# another and hit the session's compilation cache (tests/conftest.py) instead of compiling the
# same program on both workers at once.  Measured 2026-12-07 on one machine: 668 and 680 s of
# pytest (user CPU 21m15, 21m27) against 709 s (22m11) for the same tree with the default
# distribution, and 701-730 s (22m02-23m03) for the day's earlier trees.
test: setup  ## lint, then the default suite (slow checks excluded)
	$(BIN)/ruff check .
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=10

lint: setup  ## ruff (configured in pyproject.toml); `make test` runs it too
	$(BIN)/ruff check .

test-slow: setup  ## only the slow checks
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile -m slow

bench: setup
	cd benchmarks && ../$(BIN)/python advection1d.py

seeds: setup  ## final error and wall time of every paper scenario over seeds 0-4 (hours on 2 cores)
	$(BIN)/python benchmarks/seeds.py

lock:  ## newest versions within pyproject's bounds, tested, frozen into constraints.txt
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet --upgrade pip
	.venv-lock/bin/pip install --quiet -e '.[test]'
	.venv-lock/bin/ruff check .
	.venv-lock/bin/pytest -q -n $(TEST_WORKERS)
	{ sed -n '/^#/p' constraints.txt; .venv-lock/bin/pip freeze --exclude-editable | grep -v '^insr'; } > constraints.new
	mv constraints.new constraints.txt
	rm -rf .venv-lock

reproduce-quick: setup  ## every paper example, reduced sizes (~15 min on 2 cores) -> reproduce-quick/report.html
	$(BIN)/insr reproduce --quick

reproduce: setup  ## every paper example at the paper's horizons (hours on 2 cores) -> reproduce-full/report.html
	$(BIN)/insr reproduce

clean:
	rm -rf $(VENV) .venv-lock runs .pytest_cache reproduce-quick reproduce-full
