# Every set-up step lives here: the first `make quantize` or `make test` builds .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LEGACY_VENV ?= .venv-tflite-runtime
# MediaPipe Tasks (pins absl-py~=2.3, tfmot absl-py~=1.2): TFLite metadata and the client check.
MP_VENV ?= .venv-mediapipe
export PIPELINE_MEDIAPIPE_VENV := $(abspath $(MP_VENV))
MODEL ?= digits_cnn
# MODEL may be a path (path/to/model.keras): the folder is named after the file.
OUT ?= artifacts/$(basename $(notdir $(patsubst %/,%,$(MODEL))))
ARGS ?=
PYTEST_ARGS ?=
# Three pytest workers on two cores: a worker keeps a core busy only part of the time (tiny
# models, imports, subprocess start-up), and whole files go to one worker so module fixtures
# are built once. Measured on the 2-core host, same commit and hour: 2 workers 1129 s of
# pytest at 175% CPU, 3 workers 931 s at 183% (benchmarks/results/suite-2026-12-07.md).
# TEST_WORKERS=0 runs in this process.
TEST_WORKERS ?= 3
XDIST := $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile)
TFLITE ?=
DATA ?=
FUZZ_CASES ?= 10000

.PHONY: quantize validate fuzz test test-fast clean check-figures

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# --check_legacy_runtime needs the tflite-runtime 2.14 venv: build it only when asked for.
# The MediaPipe venv writes the TFLite metadata: tried first, and where it cannot be built
# the files come without metadata (one warning line says so); --check_client needs it.
quantize: $(STAMP) $(if $(findstring --check_legacy_runtime,$(ARGS)),$(LEGACY_VENV)/.installed) \
          $(if $(findstring --check_client,$(ARGS)),$(MP_VENV)/.installed)
	-@$(MAKE) --no-print-directory mediapipe-venv
	$(PY) -m pipeline quantize --model=$(MODEL) --out=$(OUT) $(if $(DATA),--data=$(DATA)) $(ARGS)

# An existing .tflite, converted anywhere: make validate TFLITE=model.tflite DATA=data.npz
validate: $(STAMP)
	-@$(MAKE) --no-print-directory mediapipe-venv
	$(PY) -m pipeline validate --tflite=$(TFLITE) --data=$(DATA) $(ARGS)

# Damaged .tflite files through the validate path; prints the counts, fails on a crash or hang.
fuzz: $(STAMP)
	$(PY) -m pipeline.cli.fuzz --cases=$(FUZZ_CASES) $(ARGS)

# Outside CI, browser-deps and mediapipe-venv never fail the target: where Chromium or
# MediaPipe cannot be installed, the tests that need them skip and say why. Under CI=true a
# failed install fails `make test` (and tests/ci_skips.py turns any skip into a failure):
# CI must exercise every feature, not pass without them.
IGNORE_UNLESS_CI := $(if $(filter true,$(CI)),,-)
# Every figure README quotes is in the results file its row links (benchmarks/results/).
check-figures: $(STAMP)
	$(PY) -m benchmarks.check_figures

test: $(STAMP) $(LEGACY_VENV)/.installed check-figures
	$(IGNORE_UNLESS_CI)@$(MAKE) --no-print-directory browser-deps
	$(IGNORE_UNLESS_CI)@$(MAKE) --no-print-directory mediapipe-venv
	$(PY) -m pytest $(XDIST) $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest $(XDIST) -m "not slow" $(PYTEST_ARGS)

clean:
	rm -rf artifacts .pytest_cache

include android_bench/android.mk

# Issue 7 benchmarks. `make bench MODEL=mnist_cnn ARGS=--data_dir=../shared/data`: four
# published recipes side by side -> benchmarks/results/<model>-<date>.json/.md.
bench: $(STAMP)
	$(PY) -m benchmarks.recipes --model=$(MODEL) $(ARGS)

# Host latency of each layer of OUT's float baseline, float vs int8: where int8 pays off.
bench-layers: $(STAMP)
	$(PY) -m benchmarks.layer_latency --model=$(MODEL) --out=$(OUT) $(if $(DATA),--data=$(DATA)) $(ARGS)

# Headless Chromium for tests/test_report_html.py. Outside CI it never fails: without
# apt-get (or root) it says so and the browser test skips with the same reason; under
# CI=true it fails instead.
browser-deps:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
	  echo "browser-deps: no apt-get here; install Chromium yourself or the browser test is skipped"; \
	  [ "$(CI)" != true ]; \
	else \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
	  ($$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver) \
	    || { echo "browser-deps: could not install chromium; the browser test will be skipped"; \
	         [ "$(CI)" != true ]; }; \
	fi

.PHONY: bench bench-layers browser-deps

# Issue 3 item 5: does the last tflite-runtime release (2.14, boards that never moved to
# LiteRT) load TFLITE and agree with LiteRT? Default: this model's int8 output.
# `make check-legacy-runtime TFLITE=path.tflite ARGS=--samples=256`
LEGACY_TFLITE = $(or $(TFLITE),$(OUT)/model_int8.tflite)

# Only tflite-runtime and numpy<2 (what such a board has), so nothing from the main venv
# can hide a missing dependency. rm first: a half-built venv from an interrupted run is not reused.
$(LEGACY_VENV)/.installed:
	rm -rf $(LEGACY_VENV)
	$(PYTHON) -m venv $(LEGACY_VENV)
	$(LEGACY_VENV)/bin/python -m pip install --quiet 'tflite-runtime==2.14.*' 'numpy<2'
	touch $@

legacy-runtime-venv: $(LEGACY_VENV)/.installed

check-legacy-runtime: $(STAMP) $(LEGACY_VENV)/.installed
	$(PY) -m pipeline.tflite.legacy_runtime --tflite=$(LEGACY_TFLITE) --venv=$(LEGACY_VENV) $(ARGS)

.PHONY: legacy-runtime-venv check-legacy-runtime

# Issue 18: MediaPipe Tasks 1.2.2 (the client most Android apps run image models with) in
# its own venv: it writes and reads TFLite metadata, and `make check-client OUT=DIR` runs
# every deployable image classifier of a quantize run in its ImageClassifier on the test
# split. MODEL (when given), DATA and ARGS must be the quantize run's. rm first: a
# half-built venv from an interrupted run is not reused.
$(MP_VENV)/.installed:
	rm -rf $(MP_VENV)
	$(PYTHON) -m venv $(MP_VENV)
	$(MP_VENV)/bin/python -m pip install --quiet 'mediapipe==1.2.2'
	touch $@

mediapipe-venv: $(MP_VENV)/.installed

check-client: $(STAMP) $(MP_VENV)/.installed
	$(PY) -m pipeline check_client --out=$(OUT) $(if $(filter command line,$(origin MODEL)),--model=$(MODEL)) $(if $(DATA),--data=$(DATA)) $(ARGS)

.PHONY: mediapipe-venv check-client

# English->Spanish translator (issue 31): its own stage list and report; ARGS: --epochs=N,
# --limit=N (first N pairs). `make translate ARGS=--data_dir=../shared/data`.
translate: $(STAMP)
	$(PY) -m pipeline.seq2seq --out=artifacts/translator $(ARGS)

.PHONY: translate
