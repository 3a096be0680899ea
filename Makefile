# Two commands do all set-up on a fresh machine with Python 3.11+:
#   make demo   runs the main job end to end on the embedded local stack
#   make test   runs the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint bench bench-parse clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -c constraints.txt -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m airflow_rs2gcs.devstack.demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Sync benchmark on the local stack: our operator vs PostgresToGCSOperator vs fetch-only, 1M rows,
# plus our operator on 4M rows for the memory-flatness check (BENCH_ARGS="--rss-rows 0" skips it).
bench: $(STAMP)
	$(BIN)/python bench/sync_bench.py $(BENCH_ARGS)

# ruff lints and checks formatting everywhere; mypy type-checks the package (settings in pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
