"""CAST advantages in JAX, written from ``spec/CAST.md`` alone (§1–§6).

    cast_advantages(rewards, group_ids, gaps, mask, config=None, step=0) -> [N, T]

Same signature and meaning as ``cast_core.cast_advantages``:

    rewards   [N]     float, finite        verifier score of each completion
    group_ids [N]     int                  the prompt each completion answers (any integers)
    gaps      [N, T]  float                teacher − rollout log-prob per token (±inf legal, NaN only outside the mask)
    mask      [N, T]  bool or 0/1          real completion tokens
    config    CASTConfig-like or None      read by attribute (spec §2); None = the defaults
    step      int >= 0                     optimizer step (the λ schedule)

Dtype: float32 ``rewards`` and ``gaps`` are computed in float32; anything else in float64.
The call runs under ``jax.enable_x64(True)`` so float64 and int64 ids work whatever the
process-wide JAX setting is; the result is a ``jax.Array`` of the compute dtype.

The math (one jit-compiled kernel, :func:`_kernel`) is pure JAX; input validation (§6) runs on
the host first, because an error that depends on the data cannot be raised from inside ``jit``.

Run the spec's vectors against it, from the project root::

    python -m cast_core.conformance --impl examples.port_jax.cast_jax:cast_advantages
    python -m cast_core.conformance --impl examples.port_jax.cast_jax:cast_advantages --dtype float32
"""

from __future__ import annotations

import functools
import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["cast_advantages", "Params", "params_from_config"]


class Params(NamedTuple):
    """The spec's §2 parameters, as the kernel takes them."""

    scale: str = "group"
    std_ddof: int = 0
    eps: float = 1e-6
    correct_threshold: float = 0.5
    lam: float = 0.5
    lam_decay_steps: int = 0
    zv_pos_base: float = 1.0
    zv_neg_base: float = 1.0
    zv_scale_with_lam: bool = True
    w_clip_correct: tuple[float, float] = (0.8, 1.05)
    w_clip_wrong: tuple[float, float] = (0.95, 1.2)
    adv_clip: tuple[float, float] = (-1.2, 1.2)
    flip_correct: bool = True
    flip_wrong: bool = True
    deadband: tuple[float, float] = (1.0, 1.0)


def params_from_config(config: Any) -> Params:
    """``Params`` from any object with the §2 field names as attributes (``None`` = defaults).

    Validating a config is the config class's job (spec §2); this only reads it."""
    if config is None:
        return Params()
    values = {}
    for name in Params._fields:
        v = getattr(config, name)
        values[name] = tuple(float(x) for x in v) if isinstance(v, (tuple, list)) else v
    return Params(**values)


# ---------------------------------------------------------------------------------------
# Host-side validation (spec §6): one-line errors naming the input and the first bad index
# ---------------------------------------------------------------------------------------
def _first_index(bad: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(bad)[0])


def _check(rewards, group_ids, gaps, mask, step) -> tuple[np.ndarray, ...]:
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise TypeError(f"step: must be an int >= 0, got {step!r}")
    if step < 0:
        raise ValueError(f"step: must be an int >= 0, got {step}")
    r = np.asarray(rewards)
    if r.ndim != 1:
        raise ValueError(f"rewards: must be 1-D [N], got shape {r.shape}")
    n = r.shape[0]
    if n == 0:
        raise ValueError("rewards: empty batch (N = 0)")
    if not (np.issubdtype(r.dtype, np.floating) or np.issubdtype(r.dtype, np.integer)):
        raise TypeError(f"rewards: must be numbers, got dtype {r.dtype}")
    if not np.all(np.isfinite(r)):
        raise ValueError(f"rewards: NaN or inf at index {_first_index(~np.isfinite(r))}")

    ids = np.asarray(group_ids)
    if ids.shape != (n,):
        raise ValueError(f"group_ids: must have shape ({n},), got {ids.shape}")
    if np.issubdtype(ids.dtype, np.floating):
        whole = np.isfinite(ids) & (ids == np.floor(ids)) & (np.abs(ids) < 2.0**63)
        if not np.all(whole):
            raise ValueError(f"group_ids: must be integers, got {ids[~whole][0]!r} at index "
                             f"{_first_index(~whole)}")
        ids = ids.astype(np.int64)
    elif not np.issubdtype(ids.dtype, np.integer) or ids.dtype == np.bool_:
        raise TypeError(f"group_ids: must be integers, got dtype {ids.dtype}")

    g = np.asarray(gaps)
    if g.ndim != 2 or g.shape[0] != n:
        raise ValueError(f"gaps: must have shape ({n}, T), got {g.shape}")
    if not np.issubdtype(g.dtype, np.floating):
        g = g.astype(np.float64)
    m = np.asarray(mask)
    if m.shape != g.shape:
        raise ValueError(f"mask: must have the shape of gaps {g.shape}, got {m.shape}")
    if m.dtype != np.bool_:
        if not (np.issubdtype(m.dtype, np.floating) or np.issubdtype(m.dtype, np.integer)):
            raise TypeError(f"mask: must be bool or 0/1, got dtype {m.dtype}")
        bad = ~((m == 0) | (m == 1))  # NaN compares unequal to both
        if np.any(bad):
            raise ValueError(f"mask: values must be 0/1, got {m[bad][0]!r} at index {_first_index(bad)}")
        m = m == 1
    nan_inside = np.isnan(g) & m
    if np.any(nan_inside):
        raise ValueError(f"gaps: NaN inside the mask at index {_first_index(nan_inside)}")
    return r, ids, g, m


# ---------------------------------------------------------------------------------------
# The math (spec §3–§5), jit-compiled
# ---------------------------------------------------------------------------------------
def _clip(x, lo, hi):
    """``min(max(x, lo), hi)``: if lo > hi the upper bound wins (spec §5)."""
    return jnp.minimum(jnp.maximum(x, lo), hi)


@functools.partial(jax.jit, static_argnames=("scale", "std_ddof", "flip_correct", "flip_wrong",
                                             "use_deadband", "zv_scale_with_lam", "decays"))
def _kernel(r, ids, g, m, step, thr, eps, lam0, decay_steps, b_pos, b_neg, lc, hc, lw, hw,
            adv_lo, adv_hi, dlo, dhi, *, scale, std_ddof, flip_correct, flip_wrong, use_deadband,
            zv_scale_with_lam, decays):
    """r [N], ids [N] int, g [N, T], m [N, T] bool -> Â [N, T]; scalars arrive in r's dtype."""
    dt = r.dtype
    n = r.shape[0]
    one = jnp.ones((), dt)

    # §3: λ(step) and the zero-variance scale s.
    if decays:
        frac = jnp.minimum(step, decay_steps).astype(dt) / decay_steps.astype(dt)
        lam = lam0 * (one - frac)
    else:
        lam = lam0
    if zv_scale_with_lam:
        s = jnp.where(lam0 == 0, jnp.zeros((), dt), _clip(lam / jnp.where(lam0 == 0, one, lam0), 0, 1))
    else:
        s = one

    # §4: classify groups by correctness; base of each completion.
    _, gid = jnp.unique(ids, return_inverse=True, size=n)  # dense ids in [0, n)
    gid = gid.reshape(n)
    seg = functools.partial(jax.ops.segment_sum, segment_ids=gid, num_segments=n)
    correct = r > thr
    count = seg(jnp.ones((n,), dt))[gid]
    n_correct = seg(correct.astype(dt))[gid]
    all_correct = n_correct == count
    all_wrong = n_correct == 0
    mean = (seg(r) / jnp.maximum(seg(jnp.ones((n,), dt)), one))[gid]
    dev = r - mean
    if scale == "group":
        # Mixed groups have >= 2 members, so count - ddof >= 1 wherever it is used.
        sigma = jnp.sqrt(seg(dev * dev)[gid] / jnp.maximum(count - std_ddof, one))
    elif scale == "batch":
        batch_dev = r - jnp.mean(r)
        sigma = jnp.sqrt(jnp.sum(batch_dev * batch_dev) / jnp.maximum(jnp.asarray(n - std_ddof, dt), one))
    elif scale != "none":
        raise ValueError(f"config.scale: must be 'group', 'batch' or 'none', got {scale!r}")
    if scale == "none":
        mixed = dev
    else:
        mixed = dev / jnp.maximum(sigma, eps)
    b = jnp.where(all_correct, b_pos * s, jnp.where(all_wrong, -b_neg * s, mixed))[:, None]

    # §5: token advantages. Padding is never read: replace it before any arithmetic.
    g = jnp.where(m, g, jnp.zeros((), dt))
    if use_deadband:
        e = jnp.exp(g)
        g = jnp.where((e >= dlo) & (e <= dhi), jnp.zeros((), dt), g)

    def weight(x, lo, hi):
        return jnp.maximum(0, one + lam * (_clip(x, lo, hi) - one))

    mag = jnp.abs(b)
    pos_keep = b * weight(jnp.exp(g), lc, hc)
    neg_keep = b * weight(jnp.exp(-g), lw, hw)
    if flip_correct:
        pos = jnp.where(g < 0, -mag * weight(jnp.exp(-g), jnp.maximum(one, lw), hw), pos_keep)
    else:
        pos = pos_keep
    if flip_wrong:
        neg = jnp.where(g > 0, mag * weight(jnp.exp(g), jnp.maximum(one, lc), hc), neg_keep)
    else:
        neg = neg_keep
    adv = jnp.where(b > 0, pos, jnp.where(b < 0, neg, jnp.zeros((), dt)))
    adv = _clip(adv, adv_lo, adv_hi)
    return jnp.where(m, adv, jnp.zeros((), dt))


def cast_advantages(rewards, group_ids, gaps, mask, config=None, step=0) -> jax.Array:
    """CAST token advantages ``[N, T]`` (spec §3–§5); see the module docstring for the inputs.

    Raises:
        ValueError / TypeError: the input named in the message is malformed (spec §6).
    """
    p = params_from_config(config)
    r, ids, g, m = _check(rewards, group_ids, gaps, mask, step)
    dt = np.float32 if (r.dtype == np.float32 and g.dtype == np.float32) else np.float64
    with jax.enable_x64(True):
        scalar = functools.partial(jnp.asarray, dtype=dt)
        (lc, hc), (lw, hw) = p.w_clip_correct, p.w_clip_wrong
        dlo, dhi = p.deadband
        return _kernel(
            jnp.asarray(r, dt), jnp.asarray(ids, jnp.int64), jnp.asarray(g, dt), jnp.asarray(m),
            jnp.asarray(step, jnp.int64), scalar(p.correct_threshold), scalar(p.eps), scalar(p.lam),
            jnp.asarray(p.lam_decay_steps, jnp.int64), scalar(p.zv_pos_base), scalar(p.zv_neg_base),
            scalar(lc), scalar(hc), scalar(lw), scalar(hw), scalar(p.adv_clip[0]), scalar(p.adv_clip[1]),
            scalar(dlo), scalar(dhi),
            scale=p.scale, std_ddof=int(p.std_ddof), flip_correct=bool(p.flip_correct),
            flip_wrong=bool(p.flip_wrong), use_deadband=bool(dlo < dhi),
            zv_scale_with_lam=bool(p.zv_scale_with_lam), decays=bool(p.lam_decay_steps > 0))
