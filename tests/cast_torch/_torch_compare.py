"""The one comparator of the torch-vs-cast_core tests: ``assert_agree`` raises, never returns a verdict.

(Named ``_torch_compare`` rather than ``_compare`` so it cannot shadow another test
folder's helper on ``sys.path``; ``conftest.py`` puts this folder there.)

Tolerance, per element, with e the expected value and S = max(1, max |e|) over the array:

    |actual − e| <= atol + rtol·|e|,    atol = C·eps·S,   rtol = C·eps

- float64 (eps = 2.2e-16): atol = rtol = 1e-12 (fixed, as the issue asks; that is ~4500
  eps, room for the few last-bit differences torch and numpy have — torch's CPU sqrt
  is not always correctly rounded, sums run in another order — and nothing else).
- float32 (eps = 1.19e-7; inputs rounded to float32, or bf16/fp16 inputs, which are
  computed in float32), C = 64. Derivation for the test inputs (rewards on a 1/8 grid,
  |r| <= 2, groups of <= 16): the one amplified rounding is the group mean's, <= eps/2·|μ|
  <= eps, divided by max(σ, eps_cfg) >= 1/16 (the smallest σ of a mixed group on that
  grid): <= 16·eps on a base of size ~1, i.e. <= 16·eps·S once W and the products scale
  base and error alike. The other <= 16 roundings on the path (r − μ, square-sum, sqrt,
  divide, exp, clip, 1 + λ·(x − 1), two products, the final clip) add <= 16·eps/2·S. That
  is 24·eps·S; C = 64 leaves room for 1-ulp library exp/sqrt. The S term is there because
  a rounding in a shared statistic (μ, σ) moves every token of the group by the same
  absolute amount, however small the token's own value. 64·eps·S is ~7.6e-6·S — orders of
  magnitude below a real bug (a wrong branch or clip bound moves a value by ~1e-2·S or
  more), so the check stays sharp. The worst error seen over 1200 random batches was
  0.8·eps·(S + |e|).

``expected`` is always cast_core's float64 result *on the inputs as the torch side saw
them* (rounded to float32/bf16/fp16 first), so input rounding is not counted as error.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["assert_agree", "tolerance", "to_f64", "DEVICES"]

#: Devices every device-parametrised test runs on: CPU always, CUDA when present.
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

_C_LOW_PRECISION = 64.0


def tolerance(dtype: torch.dtype, scale: float) -> tuple[float, float]:
    """(atol, rtol) for results computed in ``dtype`` whose largest |expected| is ``scale``.

    bf16/fp16 map to float32, the dtype cast_torch computes them in."""
    if dtype == torch.float64:
        return 1e-12, 1e-12
    if dtype in (torch.float32, torch.bfloat16, torch.float16):
        eps = torch.finfo(torch.float32).eps
        return _C_LOW_PRECISION * eps * max(1.0, scale), _C_LOW_PRECISION * eps
    raise ValueError(f"no tolerance for dtype {dtype}")


def to_f64(x: Any) -> np.ndarray:
    """tensor / ndarray / Python number -> float64 ndarray (on the host)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def assert_agree(actual: Any, expected: Any, *, dtype: torch.dtype, what: str,
                 exact_zero: Any = None, scale: float | None = None) -> None:
    """Raise ``AssertionError`` unless ``actual`` agrees with ``expected`` (see module doc).

    Args:
      actual, expected: tensors, arrays, Python floats, or dicts of those (same keys, same
        order; each value compared with its own scale).
      dtype: the dtype the torch side computed in (picks the tolerance).
      what: names the quantity in the message.
      exact_zero: optional bool [same shape]; positions where ``actual`` must be exactly 0
        (e.g. outside the mask).
      scale: the magnitude S of the computation when it exceeds the result's own (a mean
        of terms that cancel); S = max(1, scale, max |expected|).
    NaN agrees only with NaN at the same position, ±inf only with the same ±inf.
    """
    if isinstance(expected, dict) or isinstance(actual, dict):
        if not (isinstance(expected, dict) and isinstance(actual, dict)):
            raise AssertionError(f"{what}: one side is a dict, the other {type(actual).__name__}/"
                                 f"{type(expected).__name__}")
        if list(actual) != list(expected):
            raise AssertionError(f"{what}: keys differ:\n  actual   {list(actual)}\n  expected {list(expected)}")
        for key in expected:
            assert_agree(actual[key], expected[key], dtype=dtype, what=f"{what}[{key!r}]", scale=scale)
        return

    a, e = to_f64(actual), to_f64(expected)
    if a.shape != e.shape:
        raise AssertionError(f"{what}: shape {a.shape} != expected {e.shape}")
    if a.size == 0:
        return
    finite_e = np.isfinite(e)
    scale = max(float(np.max(np.abs(e[finite_e]))) if finite_e.any() else 1.0, scale or 0.0)
    atol, rtol = tolerance(dtype, scale)
    with np.errstate(invalid="ignore", over="ignore"):
        tol = atol + rtol * np.where(finite_e, np.abs(e), 0.0)
        err = np.abs(a - e)
        same_special = (np.isnan(a) & np.isnan(e)) | (~finite_e & (a == e))
        err = np.where(same_special, 0.0, np.where(np.isnan(err), np.inf, err))
        excess = err - tol
    zero_bad = np.zeros(a.shape, dtype=bool)
    if exact_zero is not None:
        zero_bad = np.broadcast_to(to_f64(exact_zero) != 0, a.shape) & (a != 0)
        excess = np.where(zero_bad, np.inf, excess)
    bad = excess > 0
    if not bad.any():
        return
    worst = np.unravel_index(int(np.argmax(excess)), a.shape) if a.ndim else ()
    idx = tuple(int(i) for i in worst)
    where = f"index {idx}" if a.ndim else "value"
    reason = ("must be exactly 0 (outside the mask)" if zero_bad[worst]
              else f"|diff| {err[worst]:.3e} > tol {tol[worst]:.3e}")
    raise AssertionError(
        f"{what} ({dtype}): {int(bad.sum())} of {a.size} values disagree; worst at {where}: "
        f"actual {a[worst]!r}, expected {e[worst]!r}, {reason} "
        f"(atol {atol:.3e}, rtol {rtol:.3e}, scale {scale:.3g})")
