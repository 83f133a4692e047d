# étude — set-up and main jobs. Every target creates .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO   ?= out/demo
# Pieces per style for the demo corpus (bounded so the demo stays within minutes).
DEMO_PER_GENRE ?= 40

.PHONY: demo test test-slow bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# The CPU build of torch first, from local disk: a bare `torch` pulls a multi-GB CUDA build.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/etude corpus builtin --per-genre $(DEMO_PER_GENRE)
	$(VENV)/bin/etude data prepare builtin --out $(DEMO)/data
	$(VENV)/bin/etude data info $(DEMO)/data

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

bench: $(STAMP)
	$(PY) benchmarks/ingest.py

clean:
	rm -rf $(VENV) out .pytest_cache
