#!/usr/bin/env bash
# CI: the JAX port of CAST (examples/port_jax) against the spec vectors, in its own small virtual
# environment (.venv-jax: jax + cast_core's numpy/sympy; no torch). float64 at the spec's tolerance,
# float32 at the runner's float32 tolerance, then the port's own tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 JAX_PLATFORMS=cpu
VENV="${CAST_JAX_VENV:-.venv-jax}"

python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/pip" install -q jax "numpy>=1.24" "sympy>=1.12" pytest
"$VENV/bin/python" -c "import jax; print('jax', jax.__version__)"

PYTHONPATH="$PWD" "$VENV/bin/python" -m cast_core.conformance --impl examples.port_jax.cast_jax:cast_advantages
PYTHONPATH="$PWD" "$VENV/bin/python" -m cast_core.conformance --impl examples.port_jax.cast_jax:cast_advantages --dtype float32
PYTHONPATH="$PWD" "$VENV/bin/python" -m pytest -p no:cacheprovider tests/examples/test_port_jax.py
