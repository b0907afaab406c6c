"""Input handling for the torch mirror: conversion, dtype policy, validation.

Shape and dtype checks read only metadata. Value checks (NaN inside the mask, non-finite
rewards, non-0/1 masks) need the data, i.e. one host-device sync on a GPU; they run when
``validate=True`` (the default) and are skipped with ``validate=False`` for graph-captured
or latency-critical code that validated its inputs upstream. The error messages match
``cast_core``'s, first offending index included.
"""

from __future__ import annotations

from typing import Any

import torch

from cast_core._checks import as_config

__all__ = ["as_config", "compute_dtype", "as_tensor", "as_float_vector", "as_group_ids",
           "as_mask", "as_float_matrix", "first_index", "raise_if_any"]


def compute_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """float64 if any floating input is float64, else float32 (bf16/fp16 are upcast)."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def as_tensor(name: str, x: Any, device: torch.device | None = None) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x if device is None or x.device == device else x.to(device)
    try:
        t = torch.as_tensor(x, device=device)
    except Exception as exc:
        raise TypeError(f"{name}: cannot be read as a tensor ({exc})") from None
    return t


def first_index(bad: torch.Tensor) -> tuple[int, ...] | int:
    """Index of the first True (row-major) — only called on the error path."""
    idx = torch.nonzero(bad.reshape(-1), as_tuple=False)[0, 0].item()
    coords = []
    for size in reversed(bad.shape):
        coords.append(idx % size)
        idx //= size
    coords.reverse()
    return coords[0] if bad.ndim == 1 else tuple(coords)


def raise_if_any(bad: torch.Tensor, message: str, values: torch.Tensor | None = None) -> None:
    """Raise ``ValueError(message.format(index=..., value=...))`` if ``bad`` has a True."""
    if bool(bad.any()):
        i = first_index(bad)
        value = values[i].item() if values is not None else None
        raise ValueError(message.format(index=i, value=value))


def _check_real(name: str, t: torch.Tensor) -> None:
    if t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"{name}: expected real numbers, got dtype {t.dtype}")


def as_float_vector(name: str, x: Any, *, device=None, validate: bool = True,
                    finite: bool = True) -> torch.Tensor:
    t = as_tensor(name, x, device)
    if t.ndim != 1:
        raise ValueError(f"{name}: expected shape [N], got {tuple(t.shape)}")
    _check_real(name, t)
    if validate and finite and t.is_floating_point():
        raise_if_any(~torch.isfinite(t), f"{name}: non-finite value {{value!r}} at index {{index}}", t)
    return t


def as_group_ids(x: Any, n: int, *, device=None, validate: bool = True) -> torch.Tensor:
    t = as_tensor("group_ids", x, device)
    if t.ndim != 1:
        raise ValueError(f"group_ids: expected shape [N], got {tuple(t.shape)}")
    if t.shape[0] != n:
        raise ValueError(f"group_ids: length {t.shape[0]} does not match rewards length {n}")
    if t.dtype == torch.bool:
        raise TypeError("group_ids: expected integers, got bool")
    if t.is_floating_point():
        if validate:
            raise_if_any(~torch.isfinite(t) | (t != torch.round(t)),
                         "group_ids: non-integer value {value!r} at index {index}", t)
        return t.to(torch.int64)
    if t.is_complex():
        raise TypeError(f"group_ids: expected integers, got dtype {t.dtype}")
    return t.to(torch.int64)


def as_float_matrix(name: str, x: Any, shape: tuple[int, ...] | None = None, *, device=None) -> torch.Tensor:
    t = as_tensor(name, x, device)
    if t.ndim != 2:
        raise ValueError(f"{name}: expected shape [N, T], got {tuple(t.shape)}")
    if shape is not None and tuple(t.shape) != tuple(shape):
        raise ValueError(f"{name}: shape {tuple(t.shape)} does not match expected {tuple(shape)}")
    _check_real(name, t)
    return t


def as_mask(x: Any, shape: tuple[int, ...] | None = None, *, device=None, validate: bool = True,
            name: str = "mask") -> torch.Tensor:
    t = as_tensor(name, x, device)
    if t.ndim != 2:
        raise ValueError(f"{name}: expected shape [N, T], got {tuple(t.shape)}")
    if shape is not None and tuple(t.shape) != tuple(shape):
        raise ValueError(f"{name}: shape {tuple(t.shape)} does not match expected {tuple(shape)}")
    if t.dtype == torch.bool:
        return t
    if t.is_complex():
        raise TypeError(f"{name}: expected bool or 0/1 values, got dtype {t.dtype}")
    if validate:
        raise_if_any((t != 0) & (t != 1), f"{name}: expected only 0/1 values, got {{value!r}} at index {{index}}", t)
    return t != 0
