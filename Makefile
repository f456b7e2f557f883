# Every set-up step lives here: the first `make quantize` or `make test` builds .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MODEL ?= digits_cnn
OUT ?= artifacts/$(MODEL)
ARGS ?=
PYTEST_ARGS ?=

.PHONY: quantize test test-fast clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

quantize: $(STAMP)
	$(PY) -m pipeline quantize --model=$(MODEL) --out=$(OUT) $(ARGS)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

clean:
	rm -rf artifacts .pytest_cache

include android_bench/android.mk
