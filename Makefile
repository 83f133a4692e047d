# étude — set-up and main jobs. Every target creates .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO   ?= out/demo
ETUDE  := $(VENV)/bin/etude
# Pieces per style for the demo corpus (bounded so the demo stays within minutes).
DEMO_PER_GENRE ?= 100
# Training time of the demo, in minutes: it stops there with a checkpoint and says which of the
# cpu preset's 2000 iterations it reached (`etude train --resume out/demo/run` continues); the
# learning rate is planned to reach its floor by then.
DEMO_MINUTES ?= 6

.PHONY: demo docs lint test test-slow bench e2e pretrained pretrained-piano clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# The CPU build of torch first, from local disk: a bare `torch` pulls a multi-GB CUDA build.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# The main job. First piano music from the shipped piano model (seconds): one piece per genre.
# Then the whole pipeline on the built-in corpus: corpus -> tokens -> LSTM (cpu preset, its
# learning-rate schedule fitted to DEMO_MINUTES) -> one piece per genre.
demo: $(STAMP)
	$(ETUDE) generate pretrained --genre all --n 1 --length 30s --out $(DEMO)/piano --force
	$(ETUDE) corpus builtin --per-genre $(DEMO_PER_GENRE)
	$(ETUDE) data prepare builtin --out $(DEMO)/data
	$(ETUDE) train $(DEMO)/data --preset cpu --out $(DEMO)/run --force --budget $(DEMO_MINUTES) > $(DEMO)/train.txt
	$(ETUDE) generate $(DEMO)/run --genre all --n 1 --length 30s --out $(DEMO)/generated --force
	@echo "demo: the shipped piano model's pieces: $(DEMO)/piano/*.wav (MIDI and piano-roll PNG beside them)"
	@echo "demo: a model trained here on the built-in corpus: $(DEMO)/generated/*.wav; its training:"
	@cat $(DEMO)/train.txt

# report.html and the studio page in a real headless browser (installs Debian's chromium when missing).
e2e: $(STAMP)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(PY) tests/e2e/check_report.py
	$(PY) tests/e2e/check_studio.py

# Re-make the built-in-corpus model shipped inside the package (src/etude/pretrained/builtin).
pretrained: $(STAMP)
	$(ETUDE) corpus builtin --per-genre 100
	$(ETUDE) data prepare builtin --out out/pretrained/data
	$(ETUDE) train out/pretrained/data --preset cpu --out out/pretrained/run --force
	$(PY) -c "from etude.models.checkpoint import export_checkpoint; export_checkpoint('out/pretrained/run', 'src/etude/pretrained/builtin')"

# Re-make the default piano model's first stage (src/etude/pretrained/piano) from the piano
# corpus: about 8 minutes on one H100, many hours on a CPU; run it again to resume. The shipped
# weights were then fine-tuned: MODEL_CARD.md beside them gives each command.
PIANO ?= ../shared/data/piano
pretrained-piano: $(STAMP)
	test -f out/piano/data/meta.json || $(ETUDE) data prepare $(PIANO) --out out/piano/data
	if [ -f out/piano/run/config.json ]; then $(ETUDE) train --resume out/piano/run; \
	else $(ETUDE) train out/piano/data --preset piano --out out/piano/run; fi
	$(PY) -c "from etude.models.checkpoint import export_checkpoint; export_checkpoint('out/piano/run', 'src/etude/pretrained/piano')"

# The documentation as a static site in out/site (MkDocs; strict, so a broken link fails).
docs: $(STAMP)
	$(PY) -m mkdocs build --strict

# Lint (ruff: line length 120, import order, pyflakes) before the tests.
lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks

test: $(STAMP) lint
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

bench: $(STAMP)
	$(PY) -m pip install -q -e '.[dev,bench]'
	$(PY) benchmarks/startup.py
	$(PY) benchmarks/ingest.py
	$(PY) benchmarks/beat_grid.py
	$(PY) benchmarks/train_speed.py
	$(PY) benchmarks/busy_neighbour.py
	$(PY) benchmarks/nade_speed.py
	$(PY) benchmarks/generate_speed.py
	$(PY) benchmarks/position_nll.py pretrained:piano pretrained:piano-memory
	$(PY) benchmarks/perform_timing.py
	$(PY) benchmarks/respond_latency.py
	$(PY) benchmarks/robot_cost.py
	$(PY) benchmarks/studio_load.py
	$(PY) benchmarks/evaluate_speed.py
	$(PY) benchmarks/evaluate_piano.py

clean:
	rm -rf $(VENV) out .pytest_cache
