"""Hypothesis strategies for the torch-vs-cast_core differential tests (numpy inputs).

Batches: N in 1..16, T in 0..12, group ids drawn from a few arbitrary int64 values
(negative, huge, non-contiguous), a random mask, gaps with ±inf inside the mask and
NaN/±inf/huge values in the padding, rewards binary, on a 1/8 grid, or (float64 only) on
a 2^-20 grid in [-2, 2].

Why grids: every sum of <= 16 rewards on a 2^-k grid is exact, so the group and batch
means cannot depend on summation order (numpy sums pairwise, torch in another order,
CUDA with atomics); the remaining differences are last-bit ones the comparator allows.
Low-precision batches also keep gaps on a 1/64 grid, whose exp() stays >= 2e-3 away
from the deadband edges offered (0.9, 0.95, 1.05, 1.1): a float32 exp and a float64 exp
of the same gap then always make the same deadband decision.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cast_core import CASTConfig

INF = math.inf
NAN = math.nan

_PADDING = st.sampled_from([NAN, INF, -INF, 0.0, 3.0, -1e308, 1e308])
_DEADBANDS = [(1.0, 1.0), (0.95, 1.05), (0.9, 1.1)]


def _rewards(n: int, kind: str):
    if kind == "binary":
        elements = st.sampled_from([0.0, 1.0])
    elif kind == "grid":
        elements = st.integers(-16, 16).map(lambda k: k / 8)
    else:
        elements = st.integers(-(2 ** 21), 2 ** 21).map(lambda k: k * 2.0 ** -20)
    return arrays(np.float64, n, elements=elements)


@st.composite
def batches(draw, *, low_precision: bool = False, max_n: int = 16, max_t: int = 12, gaps: bool = True):
    """dict(rewards [N] float64, group_ids [N] int64, gaps [N, T] float64, mask [N, T] bool)."""
    n = draw(st.integers(1, max_n))
    t = draw(st.integers(0, max_t))
    kinds = ["binary", "grid"] if low_precision else ["binary", "grid", "fine"]
    rewards = draw(_rewards(n, draw(st.sampled_from(kinds))))
    pool = draw(st.lists(st.integers(-(2 ** 40), 2 ** 40), min_size=1, max_size=5, unique=True))
    group_ids = draw(arrays(np.int64, n, elements=st.sampled_from(pool)))
    mask = draw(arrays(np.bool_, (n, t)))
    out = dict(rewards=rewards, group_ids=group_ids, mask=mask)
    if gaps:
        if low_precision:
            inside = st.one_of(st.integers(-512, 512).map(lambda k: k / 64), st.sampled_from([INF, -INF]))
        else:
            inside = st.one_of(st.floats(-8.0, 8.0, allow_nan=False),
                               st.sampled_from([INF, -INF, 0.0, -0.0, 1e-300, 800.0, -800.0]))
        g_in = draw(arrays(np.float64, (n, t), elements=inside))
        g_pad = draw(arrays(np.float64, (n, t), elements=_PADDING))
        out["gaps"] = np.where(mask, g_in, g_pad)
    return out


@st.composite
def configs(draw, *, low_precision: bool = False):
    """(CASTConfig, step) with every field varied: scale, ddof, eps, threshold, λ and its
    decay, zero-variance bases, clip ranges (including lows > 1 and highs < 1), adv clip,
    flip flags and deadband."""
    def pair(lo_min: float, lo_max: float, width: float) -> tuple[float, float]:
        lo = draw(st.floats(lo_min, lo_max))
        return lo, lo + draw(st.floats(0.0, width))

    deadbands = _DEADBANDS if low_precision else _DEADBANDS + [pair(0.5, 1.0, 0.6)]
    cfg = CASTConfig(
        scale=draw(st.sampled_from(["group", "batch", "none"])),
        std_ddof=draw(st.sampled_from([0, 1])),
        eps=draw(st.sampled_from([1e-6, 0.05, 1.0])),
        correct_threshold=draw(st.sampled_from([0.5, 0.0, 0.1, 1.0, -0.3])),
        lam=draw(st.sampled_from([0.0, 0.5, 1.0]) | st.floats(0.0, 3.0)),
        lam_decay_steps=draw(st.sampled_from([0, 0, 1, 7, 50])),
        zv_pos_base=draw(st.sampled_from([1.0, 0.0]) | st.floats(0.0, 2.0)),
        zv_neg_base=draw(st.sampled_from([1.0, 0.0]) | st.floats(0.0, 2.0)),
        zv_scale_with_lam=draw(st.booleans()),
        w_clip_correct=(0.8, 1.05) if draw(st.booleans()) else pair(0.0, 1.5, 1.0),
        w_clip_wrong=(0.95, 1.2) if draw(st.booleans()) else pair(0.0, 1.5, 1.0),
        adv_clip=(-draw(st.sampled_from([1.2, 0.0]) | st.floats(0.0, 3.0)),
                  draw(st.sampled_from([1.2, 0.0]) | st.floats(0.0, 3.0))),
        flip_correct=draw(st.booleans()),
        flip_wrong=draw(st.booleans()),
        deadband=draw(st.sampled_from(deadbands)),
    )
    return cfg, draw(st.integers(0, 60))
