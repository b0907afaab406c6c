"""The JAX port (examples/port_jax/cast_jax.py) against the spec vectors, both precisions.

Runs where JAX is installed (.ci/jax.sh makes that environment); skipped elsewhere."""

import numpy as np
import pytest

jax = pytest.importorskip("jax")

from cast_core.conformance import run_conformance  # noqa: E402
from examples.port_jax import cast_jax  # noqa: E402

IMPL = "examples.port_jax.cast_jax:cast_advantages"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_port_passes_every_cast_advantages_vector(dtype):
    report = run_conformance(impl=IMPL, dtype=dtype)
    assert report.ok, report.table()
    assert report.passed >= 70 and {r.function for r in report.results} == {"cast_advantages"}


def test_dtype_follows_the_inputs_and_the_global_x64_flag_is_left_alone():
    before = jax.config.jax_enable_x64
    r = np.array([1.0, 0.0, 1.0, 1.0])
    g = np.array([[0.5, -0.3], [0.5, 0.3], [0.0, 0.1], [-0.2, 0.0]])
    m = np.ones((4, 2), dtype=bool)
    ids = np.array([0, 0, 7, 7])
    out64 = cast_jax.cast_advantages(r, ids, g, m)
    out32 = cast_jax.cast_advantages(r.astype(np.float32), ids, g.astype(np.float32), m)
    assert out64.dtype == np.float64 and out32.dtype == np.float32
    np.testing.assert_allclose(np.asarray(out32), np.asarray(out64), rtol=1e-6, atol=1e-7)
    assert jax.config.jax_enable_x64 == before


def test_the_math_is_one_jit_compiled_kernel():
    assert hasattr(cast_jax._kernel, "lower")  # a jax.jit-wrapped function
    r, ids = np.array([1.0, 0.0]), np.array([3, 3])
    g, m = np.array([[0.1, -0.2]]).repeat(2, 0), np.ones((2, 2), dtype=bool)
    cast_jax.cast_advantages(r, ids, g, m, step=0)
    size = cast_jax._kernel._cache_size()
    cast_jax.cast_advantages(r * 0.5, ids, g, m, step=5)   # same shapes, new values: no recompilation
    assert cast_jax._kernel._cache_size() == size
