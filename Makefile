# One install, one test command, one benchmark command. Everything lives in .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER := 0

.PHONY: install test test-slow bench clean system-deps lmplz

# Debian packages the tests need beyond PyPI: headless Chromium renders report.html in a test; cmake, Boost
# and zlib build KenLM's lmplz / build_binary (`make lmplz`) and the `kenlm` Python module.
SYSTEM_PACKAGES := chromium cmake libboost-program-options-dev libboost-system-dev libboost-thread-dev \
	libboost-test-dev zlib1g-dev
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
system-deps:
	if command -v apt-get >/dev/null; then $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES); \
	else echo "no apt-get: install $(SYSTEM_PACKAGES) with your package manager"; fi

# The package with the trainer and the test tools, editable; torch pinned to the tested release (CONSTRAINTS=
# to take your own). A user needs only `pip install curate-corpus` (or `pip install .`).
CONSTRAINTS ?= .ci/constraints.txt
install:
	test -x $(BIN)/pip || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,train]' $(if $(CONSTRAINTS),-c $(CONSTRAINTS))

# KenLM's lmplz (trains `curate train-kenlm` models; nothing else needs it) and build_binary, built from the `kenlm` PyPI sdist with
# cmake and Boost (apt: libboost-program-options-dev libboost-system-dev libboost-thread-dev libboost-test-dev
# zlib1g-dev cmake: `make system-deps`). Skipped when both are already in .venv/bin.
KENLM_BUILD := $(VENV)/build/kenlm

lmplz: $(BIN)/lmplz $(BIN)/build_binary

$(BIN)/lmplz $(BIN)/build_binary &:
	@command -v cmake >/dev/null || { echo "make lmplz needs cmake and Boost: apt-get install cmake libboost-program-options-dev libboost-system-dev libboost-thread-dev libboost-test-dev zlib1g-dev"; exit 1; }
	test -x $(BIN)/pip || $(PYTHON) -m venv $(VENV)
	rm -rf $(KENLM_BUILD) && mkdir -p $(KENLM_BUILD)
	$(BIN)/pip download --quiet --no-deps --no-binary kenlm --dest $(KENLM_BUILD) kenlm
	tar -xzf $(KENLM_BUILD)/kenlm-*.tar.gz -C $(KENLM_BUILD) --strip-components=1
	cmake -S $(KENLM_BUILD) -B $(KENLM_BUILD)/build -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(KENLM_BUILD)/build --target lmplz build_binary -j $$(nproc)
	cp $(KENLM_BUILD)/build/bin/lmplz $(KENLM_BUILD)/build/bin/build_binary $(BIN)/
	rm -rf $(KENLM_BUILD)

# -P: the checkout's root is not on sys.path, so a stale top-level import cannot hide behind it. Two pytest
# workers, a test file each at a time (`--dist loadfile`: a module's shared run or cluster stays in one process):
# most of a Ray test's wall time is start-up and waiting, which the other worker fills. Files start longest first
# (tests/conftest.py `LONGEST_FIRST`; --no-loadscope-reorder keeps that order).
test: lmplz
	$(BIN)/python -P -m pytest -q -p no:cacheprovider -n 2 --dist loadfile --no-loadscope-reorder

# The `slow` tests `make test` leaves out: every language of a 181-language mirror in one run (pyproject.toml).
test-slow:
	$(BIN)/python -P -m pytest -q -p no:cacheprovider -m slow

bench:
	$(BIN)/python benchmarks/stage1.py
	$(BIN)/python benchmarks/filters.py
	$(BIN)/python benchmarks/dedup_signatures.py
	$(BIN)/python benchmarks/dedup_clustering.py
	$(BIN)/python benchmarks/trainer.py
	$(BIN)/python benchmarks/e2e.py
	$(BIN)/python benchmarks/scorers.py
	$(BIN)/python benchmarks/decontamination.py
	$(BIN)/python benchmarks/index.py
	$(BIN)/python benchmarks/stage3_io.py

clean:
	rm -rf $(VENV) out .pytest_cache
