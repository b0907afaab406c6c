"""Input validation shared by every `cast_core` function.

Each check raises ``ValueError``/``TypeError`` naming the argument and, for arrays, the
first offending index, so a bad batch fails where it enters instead of as a NaN three
steps later. Checks cost one vectorised pass each; the index is computed only on failure.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .config import CASTConfig

__all__ = [
    "as_config", "as_float_vector", "as_group_ids", "as_mask", "as_float_matrix",
    "check_finite", "check_no_nan_in_mask", "first_index",
]


def first_index(bad: np.ndarray) -> tuple[int, ...] | int:
    """Index of the first True in ``bad`` (row-major), as an int for 1-D, else a tuple."""
    flat = int(np.argmax(bad.reshape(-1)))
    idx = np.unravel_index(flat, bad.shape)
    return int(idx[0]) if bad.ndim == 1 else tuple(int(i) for i in idx)


def as_config(config: CASTConfig | None) -> CASTConfig:
    if config is None:
        return CASTConfig()
    if not isinstance(config, CASTConfig):
        raise TypeError(f"config: expected a CASTConfig or None, got {type(config).__name__}")
    return config


def _as_array(name: str, x: Any) -> np.ndarray:
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists, objects numpy cannot hold
        raise TypeError(f"{name}: cannot be read as an array ({exc})") from None
    if arr.dtype == object:
        raise TypeError(f"{name}: expected a numeric array, got dtype object (ragged or non-numeric input?)")
    return arr


def as_float_vector(name: str, x: Any, *, finite: bool = True, nonempty: bool = False) -> np.ndarray:
    """``x`` as a 1-D float64 array; non-finite entries are an error when ``finite``, N = 0
    when ``nonempty``."""
    arr = _as_array(name, x)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected shape [N], got {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
            or arr.dtype == np.bool_):
        raise TypeError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    if nonempty and arr.shape[0] == 0:
        raise ValueError(f"{name}: empty batch (N = 0)")
    arr = arr.astype(np.float64, copy=False)
    if finite:
        check_finite(name, arr)
    return arr


def check_finite(name: str, arr: np.ndarray) -> None:
    ok = np.isfinite(arr)
    if not ok.all():
        bad = ~ok
        i = first_index(bad)
        raise ValueError(f"{name}: non-finite value {float(arr[i])!r} at index {i}")


def as_group_ids(x: Any, n: int) -> np.ndarray:
    """Group ids as int64 [N]. Floats are accepted only if they hold integers."""
    arr = _as_array("group_ids", x)
    if arr.ndim != 1:
        raise ValueError(f"group_ids: expected shape [N], got {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"group_ids: length {arr.shape[0]} does not match rewards length {n}")
    if np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.int64, copy=False)
    if arr.dtype == np.bool_:
        raise TypeError("group_ids: expected integers, got bool")
    if np.issubdtype(arr.dtype, np.floating):
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            i = first_index(bad)
            raise ValueError(f"group_ids: non-integer value {float(arr[i])!r} at index {i}")
        return arr.astype(np.int64)
    raise TypeError(f"group_ids: expected integers, got dtype {arr.dtype}")


def as_float_matrix(name: str, x: Any, shape: tuple[int, int] | None = None) -> np.ndarray:
    """``x`` as a 2-D float64 array [N, T] (no finiteness check: padding may hold anything)."""
    arr = _as_array(name, x)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected shape [N, T], got {arr.shape}")
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{name}: shape {arr.shape} does not match expected {shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def as_mask(x: Any, shape: tuple[int, ...] | None = None, name: str = "mask") -> np.ndarray:
    """Mask as a bool array. Numeric masks must hold only 0 and 1."""
    arr = _as_array(name, x)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected shape [N, T], got {arr.shape}")
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{name}: shape {arr.shape} does not match expected {shape}")
    if arr.dtype == np.bool_:
        return arr
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{name}: expected bool or 0/1 values, got dtype {arr.dtype}")
    bad = (arr != 0) & (arr != 1)
    if bad.any():
        i = first_index(bad)
        raise ValueError(f"{name}: expected only 0/1 values, got {arr[i].item()!r} at index {i}")
    return arr != 0


def check_no_nan_in_mask(name: str, values: np.ndarray, mask: np.ndarray) -> None:
    """NaN where ``mask`` is set is an error; NaN in padding is legal and ignored."""
    bad = np.isnan(values) & mask
    if bad.any():
        i = first_index(bad)
        raise ValueError(f"{name}: NaN inside the mask at index {i}")
