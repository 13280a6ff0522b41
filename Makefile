# The README's two commands. Each sets up what it needs first, and that is quick once done:
#   make run    the end-to-end pipeline on the bundled sample (options: make run ARGS="--budget smoke --dry_run")
#   make test   the whole test suite (options: make test PYTEST_ARGS="-k milvus")
# They need nothing activated: everything runs with the project venv's .venv/bin/python (scripts/setup_venv.sh).
# `make test` also installs the Milvus 2.3.5 server venv and Chromium that some tests need; where one cannot
# be installed, opt out with SKIP_MILVUS_SERVER=1 or SKIP_BROWSER=1 (those tests are then skipped, and said so).
SHELL := /bin/bash
PY := .venv/bin/python
# an opt-out is any value but empty or 0; exported, so that the tests see it (tests/conftest.py)
export SKIP_BROWSER SKIP_MILVUS_SERVER

.PHONY: help run test venv milvus-server browser

help:
	@echo "make run    the whole pipeline on the bundled sample, offline, CPU (ARGS='...': scripts/pipeline.py options)"
	@echo "make test   the whole test suite (SKIP_BROWSER=1 / SKIP_MILVUS_SERVER=1: do without them, skipping the tests that need them)"

run: venv
	@PYTHON=$(PY) bash scripts/run_pipeline.sh $(ARGS)

test: venv milvus-server browser
	$(PY) -m pytest -q $(PYTEST_ARGS)

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
