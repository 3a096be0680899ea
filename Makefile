# Two commands do all set-up on a fresh machine with Python 3.11+:
#   make demo        runs the main job end to end on the embedded local stack
#   make test        runs the test suite: tests/unit and tests/integration (what CI runs); its
#                    set-up also installs, when missing (apt-get, root), Chromium for the browser
#                    test and redis-server (the Celery broker) for the Celery test
# and the inner loop:
#   make test-unit   runs tests/unit only (no processes, no network, under a minute)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-unit lint constraints bench bench-contract bench-parse bench-plugin bench-scale bench-copy clean

$(STAMP): pyproject.toml dev/pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -c constraints.txt -e '.[test]'
	touch $(STAMP)

# The browser test (tests/integration/test_browser_ui.py) drives Debian's Chromium: set-up of `make test`,
# never of a test. The binary is its own stamp: apt-get runs only while it is missing, and only where
# apt-get exists and we are root. Without it the test skips, and fails in CI (CI=true).
# No Recommends (udev, mesa, CUPS tools: not needed headless); fonts-liberation gives the screenshots
# readable text on a machine without fonts.
CHROMIUM := /usr/bin/chromium
CHROMIUM_PACKAGES := chromium fonts-liberation
APT_GET := DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=120

$(CHROMIUM):
	@if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "installing $(CHROMIUM_PACKAGES) with apt-get (for the browser test)"; \
		$(APT_GET) update && $(APT_GET) install -y --no-install-recommends $(CHROMIUM_PACKAGES) \
			|| echo "warning: apt-get could not install $(CHROMIUM_PACKAGES): the browser test will skip (fail in CI)"; \
	else \
		echo "note: $(CHROMIUM) is missing and apt-get as root is not available: the browser test will skip (fail in CI)"; \
	fi

demo: $(STAMP)
	$(BIN)/python -m rs2gcs_devstack.demo

# The Celery test (tests/integration/test_celery_e2e.py) runs Debian's redis-server as its broker; the
# same rule as Chromium: installed by set-up when missing, the test skips without it (fails in CI).
# No Recommends: redis-tools is not needed, the test talks to the server through the redis client.
REDIS_SERVER := /usr/bin/redis-server
REDIS_PACKAGES := redis-server

$(REDIS_SERVER):
	@if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "installing $(REDIS_PACKAGES) with apt-get (for the Celery test)"; \
		$(APT_GET) update && $(APT_GET) install -y --no-install-recommends $(REDIS_PACKAGES) \
			|| echo "warning: apt-get could not install $(REDIS_PACKAGES): the Celery test will skip (fail in CI)"; \
	else \
		echo "note: $(REDIS_SERVER) is missing and apt-get as root is not available: the Celery test will skip (fail in CI)"; \
	fi

# Two pytest-xdist workers, one whole test module each at a time (--dist loadfile: a module's stack
# and Airflow home are started once, on one worker). Most of an integration test's time is waiting for
# Airflow processes, so two workers on two cores finish well before one. TEST_WORKERS=0 runs serially.
TEST_WORKERS ?= 2

test: $(STAMP) $(CHROMIUM) $(REDIS_SERVER)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

# Sync benchmark on the local stack: our operator (fast path and plain driver path) vs
# PostgresToGCSOperator vs fetch-only, 1M rows, plus our operator on 4M rows for the memory-flatness
# check (BENCH_ARGS="--rss-rows 0" skips it).
bench: $(STAMP)
	$(BIN)/python bench/sync_bench.py $(BENCH_ARGS)

# What verify="count" and capture_deletes cost beside a plain export (bench/README.md, "Data contract").
bench-contract: $(STAMP)
	$(BIN)/python bench/contract_bench.py $(BENCH_ARGS)

# Issue 17's S3 -> GCS copy engine vs S3ToGCSOperator on 1 GB of Parquet objects (bench/README.md, "S3 copy").
bench-copy: $(STAMP)
	$(BIN)/python bench/copy_bench.py $(BENCH_ARGS)

# What the factory costs the dag-processor (bench/README.md, "Parse cost").
bench-parse: $(STAMP)
	$(BIN)/python bench/parse_bench.py $(BENCH_ARGS)

# The widget API's latency: tenant list with 1000 tenants, a 100-relation catalog page (bench/README.md).
bench-plugin: $(STAMP)
	$(BIN)/python bench/plugin_bench.py $(BENCH_ARGS)

# Capacity under the real scheduler: one task per table vs small tables grouped, then table syncs per
# hour with the LocalExecutor and two Celery workers (bench/README.md, "Scale"; needs redis-server).
bench-scale: $(STAMP) $(REDIS_SERVER)
	$(BIN)/python bench/scale_bench.py $(BENCH_ARGS)

# ruff lints and checks formatting everywhere; mypy type-checks the package (settings in pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Re-resolve constraints.txt after a dependency change in pyproject.toml or dev/pyproject.toml: uv
# keeps every pin already in the file and adds what is new. The two local packages are not pinned.
constraints: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --all-extras --no-header --python-version 3.11 \
		--no-emit-package rs2gcs-devstack --no-emit-package airflow-provider-rs2gcs -o constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info dev/build dev/*.egg-info
