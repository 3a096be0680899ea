# Two commands do all set-up on a fresh machine with Python 3.11+:
#   make demo        runs the main job end to end on the embedded local stack
#   make test        runs the test suite: tests/unit and tests/integration (what CI runs)
# and the inner loop:
#   make test-unit   runs tests/unit only (no processes, no network, under a minute)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-unit lint constraints bench bench-parse clean

$(STAMP): pyproject.toml dev/pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -c constraints.txt -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m rs2gcs_devstack.demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

# Sync benchmark on the local stack: our operator vs PostgresToGCSOperator vs fetch-only, 1M rows,
# plus our operator on 4M rows for the memory-flatness check (BENCH_ARGS="--rss-rows 0" skips it).
bench: $(STAMP)
	$(BIN)/python bench/sync_bench.py $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

# Re-resolve constraints.txt after a dependency change in pyproject.toml or dev/pyproject.toml: uv
# keeps every pin already in the file and adds what is new. The two local packages are not pinned.
constraints: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --all-extras --no-header --python-version 3.11 \
		--no-emit-package rs2gcs-devstack --no-emit-package airflow-provider-rs2gcs -o constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info dev/build dev/*.egg-info
