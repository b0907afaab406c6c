#!/usr/bin/env bash
# CI: CAST against the released verl 0.9.x, in its own virtual environment (.venv-verl): verl pins
# transformers < 5.11, the main environment has 5.24. Runs the verl integration tests unskipped
# (CAST_REQUIRE_VERL=1 turns a missing verl into an error) plus the stand-in and teacher tests.
# verl[verl-core] brings TransferQueue, which verl's default trainer (trainer.use_v1=true) needs.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1
VENV="${CAST_VERL_VENV:-.venv-verl}"

python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/pip" install -q torch==2.13.0                  # the CPU wheel first, or pip pulls CUDA
"$VENV/bin/pip" install -q "verl[verl-core]~=0.9.1" pytest hypothesis
"$VENV/bin/pip" install -q --no-deps -e .                 # cast-rlvr itself; its deps are there already
"$VENV/bin/python" -c "import verl, ray, transformers, transfer_queue; print('verl', verl.__version__, '| ray', ray.__version__, '| transformers', transformers.__version__)"

CAST_REQUIRE_VERL=1 "$VENV/bin/python" -m pytest -p no:cacheprovider -rs \
    tests/integrations/test_verl_real.py tests/integrations/test_verl.py tests/integrations/test_verl_teacher.py
