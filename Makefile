# liqsignals developer commands. Every target creates the virtual environment when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

CORE_VENV ?= .venv-core
# worker processes of the test run (pytest-xdist; whole test files per worker, so a file's
# servers, bots and module fixtures stay in one process); TEST_WORKERS=0 runs in this process
TEST_WORKERS ?= 2

.PHONY: venv test lint format bench backtest clean core-check browser

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

## test: lint, type-check, the core-install check, then the whole pytest suite (what CI runs)
test: venv lint core-check browser
	$(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 1; fi; exit $$rc

lint: venv
	$(VENV)/bin/ruff check liqsignals strategies tests benchmarks
	$(VENV)/bin/ruff format --check liqsignals strategies tests benchmarks
	$(VENV)/bin/mypy

format: venv
	$(VENV)/bin/ruff check --fix liqsignals strategies tests benchmarks
	$(VENV)/bin/ruff format liqsignals strategies tests benchmarks

## browser: the system Chromium and chromedriver for the web view's browser tests (apt, when missing)
browser:
	sh scripts/install_browser.sh

## core-check: a venv with the core install only (no extras): the indicator API works without
## freqtrade, ccxt, matplotlib or plotly, and the golden output hashes hold there too
core-check:
	test -x $(CORE_VENV)/bin/python || $(PYTHON) -m venv $(CORE_VENV)
	$(CORE_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CORE_VENV)/bin/python -m pip install --quiet --force-reinstall --no-deps . && $(CORE_VENV)/bin/python -m pip install --quiet . pytest
	cd tests && ../$(CORE_VENV)/bin/python core_install_check.py
	$(CORE_VENV)/bin/pytest -q -p no:cacheprovider tests/test_golden.py

## bench: speed figures (not part of the tests)
bench: venv
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

## backtest: the main job, an offline backtest of the flagship strategy on the bundled data
backtest: venv
	$(PY) -m liqsignals.mainjob

clean:
	rm -rf $(VENV) $(CORE_VENV) .pytest_cache .mypy_cache .ruff_cache
