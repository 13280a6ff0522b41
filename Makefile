# The README's two commands. Each sets up what it needs first, and that is quick once done:
#   make run    the end-to-end pipeline on the bundled sample (options: make run ARGS="--budget smoke --dry_run")
#   make test   the whole test suite (options: make test PYTEST_ARGS="-k milvus")
#   make test-fast  the fast tier (under 90 s on 2 cores: no training, no service process; docs/development.md#tests)
# They need nothing activated: everything runs with the project venv's .venv/bin/python (scripts/setup_venv.sh).
# `make test` also installs the Milvus 2.3.5 server venv and Chromium that some tests need; where one cannot
# be installed, opt out with SKIP_MILVUS_SERVER=1 or SKIP_BROWSER=1 (those tests are then skipped, and said so).
SHELL := /bin/bash
PY := .venv/bin/python
# an opt-out is any value but empty or 0; exported, so that the tests see it (tests/conftest.py)
export SKIP_BROWSER SKIP_MILVUS_SERVER

# the fast tier: the search path in-process (SearchSystem and the JSON API over Milvus Lite, no model), the readers'
# bad-input rules, the features, lint and the documentation's commands; what it leaves out: docs/development.md
FAST_TESTS := tests/test_search_path.py tests/test_search_api.py tests/test_api_errors.py tests/test_library_errors.py \
	tests/test_records.py tests/test_fuzz.py tests/test_search_features.py tests/test_highlight.py \
	tests/test_negatives.py tests/test_docs.py tests/test_lint.py

.PHONY: help run test test-fast venv milvus-server browser

help:
	@echo "make run    the whole pipeline on the bundled sample, offline, CPU (ARGS='...': scripts/pipeline.py options)"
	@echo "make test   the whole test suite (SKIP_BROWSER=1 / SKIP_MILVUS_SERVER=1: do without them, skipping the tests that need them)"
	@echo "make test-fast  the fast tier (under 90 s on 2 cores: no training, no service process)"

run: venv
	@PYTHON=$(PY) bash scripts/run_pipeline.sh $(ARGS)

# two pytest-xdist workers, one file a worker (tests/conftest.py: which files share one, the longest first); on 2
# cores the second worker takes the core one process leaves idle (docs/development.md#tests)
test: venv milvus-server browser
	$(PY) -m pytest -q -n 2 --dist loadfile $(PYTEST_ARGS)

test-fast: venv
	$(PY) -m pytest -q -m "not slow" $(FAST_TESTS) $(PYTEST_ARGS)

venv:
	@bash scripts/setup_venv.sh

milvus-server:
ifneq ($(filter-out 0,$(SKIP_MILVUS_SERVER)),)
	@echo "make: SKIP_MILVUS_SERVER=$(SKIP_MILVUS_SERVER): not installing the Milvus server; where it is missing, its tests are skipped"
else
	@bash scripts/setup_milvus_server.sh
endif

browser:
ifneq ($(filter-out 0,$(SKIP_BROWSER)),)
	@echo "make: SKIP_BROWSER=$(SKIP_BROWSER): not installing Chromium; where it is missing, the browser test is skipped"
else
	@bash scripts/setup_browser.sh
endif
