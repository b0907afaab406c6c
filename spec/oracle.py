"""The CAST reference oracle: an independent, exact-arithmetic reading of spec/CAST.md.

This module is the second implementation against which ``cast_core`` (numpy) and
``cast_torch`` are checked. It is written from the specification only, never from
either library, and favours obviousness over speed:

* plain Python, no numpy: inputs are nested lists (anything with ``tolist()`` is
  accepted too) and outputs are nested lists of Python floats;
* every float input is taken at its exact binary value: rewards, clip bounds, λ, eps
  and thresholds become ``fractions.Fraction`` so means, variances, group
  classification and the λ schedule are exact rationals;
* square roots and exponentials are evaluated with mpmath in a private context at
  50 significant digits (about 166 bits), so every comparison that decides a branch
  (σ against eps, exp(g) against the deadband) is made far below float64 resolution;
* each result is rounded to the nearest float64 only once, at the very end.

Non-finite values are legal where the spec says so: NaN/±inf anywhere outside the
mask (never read), ±inf gaps inside the mask. Everything else the spec calls an
error raises ``ValueError`` (``TypeError`` for a wrong type), naming the input and,
for arrays, the first offending index.

Functions: ``lam_at``, ``zv_scale``, ``base_advantages``, ``token_advantages``,
``cast_advantages``, ``policy_loss``, ``policy_loss_grad``, ``grpo_advantages``,
``rlsd_advantages``, ``rl_zvp_advantages``, ``opsd_advantages``. The CAST config is a
plain ``dict`` with the contract's field names; missing fields take ``DEFAULTS``.
"""

from __future__ import annotations

import math
import numbers
from fractions import Fraction
from typing import Any, Iterable

import mpmath

__all__ = [
    "DEFAULTS",
    "AGGREGATIONS",
    "resolve_config",
    "lam_at",
    "zv_scale",
    "base_advantages",
    "token_advantages",
    "cast_advantages",
    "policy_loss",
    "policy_loss_grad",
    "grpo_advantages",
    "rlsd_advantages",
    "rl_zvp_advantages",
    "opsd_advantages",
]

# A private mpmath context: setting precision here must not leak into sympy or other
# users of the global ``mpmath.mp``.
_MP = mpmath.MPContext()
_MP.dps = 50

DEFAULTS: dict[str, Any] = {
    "scale": "group",
    "std_ddof": 0,
    "eps": 1e-6,
    "correct_threshold": 0.5,
    "lam": 0.5,
    "lam_decay_steps": 0,
    "zv_pos_base": 1.0,
    "zv_neg_base": 1.0,
    "zv_scale_with_lam": True,
    "w_clip_correct": (0.8, 1.05),
    "w_clip_wrong": (0.95, 1.2),
    "adv_clip": (-1.2, 1.2),
    "flip_correct": True,
    "flip_wrong": True,
    "deadband": (1.0, 1.0),
}

AGGREGATIONS = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm")
_SCALES = ("group", "batch", "none")


# ----------------------------------------------------------------------------------
# Exact-number helpers
# ----------------------------------------------------------------------------------
def _is_real(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _exact(x: Any, what: str) -> Fraction:
    """The exact rational value of a finite real (a float's binary value, exactly)."""
    if not _is_real(x):
        raise TypeError(f"{what}: must be a real number, got {x!r}")
    if isinstance(x, float) and not math.isfinite(x):
        raise ValueError(f"{what}: must be finite, got {x!r}")
    return Fraction(x)


def _mpf(x: Any) -> Any:
    """Fraction / int / float (±inf included) -> mpf; float conversion is exact at 166 bits."""
    if isinstance(x, Fraction):
        return _MP.mpf(x.numerator) / x.denominator
    return _MP.mpf(x)


def _to_float(x: Any) -> float:
    """Round an exact or high-precision value to the nearest float64, once."""
    if isinstance(x, Fraction):
        return float(x)  # Fraction.__float__ rounds correctly
    value = float(x)
    return 0.0 if value == 0 else value


def _clip(x: Any, lo: Any, hi: Any) -> Any:
    """min(max(x, lo), hi): when lo > hi (a flipped token's floor 1 above a side's hi < 1) hi wins."""
    return min(max(x, lo), hi)


# ----------------------------------------------------------------------------------
# Input handling (lists in, lists out)
# ----------------------------------------------------------------------------------
def _plain(x: Any) -> Any:
    if hasattr(x, "detach"):
        x = x.detach().cpu()
    if hasattr(x, "tolist"):
        return x.tolist()
    return x


def _vector(x: Any, name: str) -> list:
    x = _plain(x)
    if x is None or isinstance(x, (str, bytes)) or not isinstance(x, Iterable):
        raise TypeError(f"{name}: must be a 1-D sequence of numbers, got {type(x).__name__}")
    out = list(x)
    for i, v in enumerate(out):
        if isinstance(v, (list, tuple)):
            raise ValueError(f"{name}: must be 1-D, index ({i},) holds a sequence")
    return out


def _matrix(x: Any, name: str, n_rows: int) -> tuple[list[list], int]:
    """A rectangular [n_rows, T] list of lists; returns (rows, T)."""
    x = _plain(x)
    if x is None or isinstance(x, (str, bytes)) or not isinstance(x, Iterable):
        raise TypeError(f"{name}: must be a 2-D [N, T] nested sequence, got {type(x).__name__}")
    rows = []
    for r in x:
        r = _plain(r)
        rows.append(list(r) if isinstance(r, Iterable) and not isinstance(r, (str, bytes)) else None)
    if len(rows) != n_rows:
        raise ValueError(f"{name}: expected {n_rows} rows (N), got {len(rows)}")
    for i, r in enumerate(rows):
        if r is None:
            raise ValueError(f"{name}: must be 2-D, row {i} is not a sequence")
    width = len(rows[0]) if rows else 0
    for i, r in enumerate(rows):
        if len(r) != width:
            raise ValueError(f"{name}: ragged rows, row 0 has {width} entries and row {i} has {len(r)}")
    return rows, width


def _mask(x: Any, n_rows: int, width: int, name: str = "mask") -> list[list[bool]]:
    rows, w = _matrix(x, name, n_rows)
    if w != width:
        raise ValueError(f"{name}: shape [{n_rows}, {w}] does not match [{n_rows}, {width}]")
    out = []
    for i, r in enumerate(rows):
        out_row = []
        for t, v in enumerate(r):
            if isinstance(v, bool):
                out_row.append(v)
                continue
            if not _is_real(v):
                raise TypeError(f"{name}: entries must be bool or 0/1, got {v!r} at index ({i}, {t})")
            if isinstance(v, float) and math.isnan(v):
                raise ValueError(f"{name}: NaN at index ({i}, {t})")
            if v not in (0, 1):
                raise ValueError(f"{name}: entries must be 0 or 1, got {v!r} at index ({i}, {t})")
            out_row.append(v == 1)
        out.append(out_row)
    return out


def _check_n(n: int) -> None:
    if n == 0:
        raise ValueError("empty batch: N = 0 completions")


def _finite_vector(values: Any, name: str) -> list[Fraction]:
    """A non-empty [N] vector of finite reals, as exact Fractions (errors name ``name``)."""
    r = _vector(values, name)
    _check_n(len(r))
    out = []
    for i, v in enumerate(r):
        if not _is_real(v):
            raise TypeError(f"{name}: entries must be real numbers, got {v!r} at index ({i},)")
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"{name}: non-finite value {v!r} at index ({i},)")
        out.append(Fraction(v))
    return out


def _rewards(rewards: Any) -> list[Fraction]:
    return _finite_vector(rewards, "rewards")


def _group_ids(group_ids: Any, n: int) -> list[int]:
    ids = _vector(group_ids, "group_ids")
    if len(ids) != n:
        raise ValueError(f"group_ids: length {len(ids)} does not match rewards length {n}")
    out = []
    for i, v in enumerate(ids):
        if isinstance(v, bool) or not _is_real(v):
            raise TypeError(f"group_ids: entries must be integers, got {v!r} at index ({i},)")
        if isinstance(v, float) and (not math.isfinite(v) or v != int(v)):
            raise ValueError(f"group_ids: non-integer value {v!r} at index ({i},)")
        out.append(int(v))
    return out


def _masked_values(x: Any, name: str, mask: list[list[bool]], width: int,
                   allow_inf: bool) -> list[list[Any]]:
    """Values inside the mask (as floats, exact); outside the mask: None (never read)."""
    rows, w = _matrix(x, name, len(mask))
    if w != width:
        raise ValueError(f"{name}: shape [{len(mask)}, {w}] does not match mask [{len(mask)}, {width}]")
    out = []
    for i, r in enumerate(rows):
        out_row: list[Any] = []
        for t, v in enumerate(r):
            if not mask[i][t]:
                out_row.append(None)
                continue
            if not _is_real(v):
                raise TypeError(f"{name}: entries must be real numbers, got {v!r} at index ({i}, {t})")
            v = float(v)
            if math.isnan(v):
                raise ValueError(f"{name}: NaN inside the mask at index ({i}, {t})")
            if math.isinf(v) and not allow_inf:
                raise ValueError(f"{name}: infinite value inside the mask at index ({i}, {t})")
            out_row.append(v)
        out.append(out_row)
    return out


def _step(step: Any) -> int:
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise TypeError(f"step: must be an int >= 0, got {step!r}")
    if step < 0:
        raise ValueError(f"step: must be >= 0, got {step!r}")
    return int(step)


# ----------------------------------------------------------------------------------
# Config
# ----------------------------------------------------------------------------------
def resolve_config(config: dict | None) -> dict[str, Any]:
    """DEFAULTS overlaid with ``config``; validated; numbers become exact Fractions."""
    config = dict(config or {})
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"config: unknown field(s) {unknown}")
    c = {**DEFAULTS, **config}
    out: dict[str, Any] = {}
    if c["scale"] not in _SCALES:
        raise ValueError(f"config.scale: must be one of {_SCALES}, got {c['scale']!r}")
    out["scale"] = c["scale"]
    if isinstance(c["std_ddof"], bool) or c["std_ddof"] not in (0, 1):
        raise ValueError(f"config.std_ddof: must be 0 or 1, got {c['std_ddof']!r}")
    out["std_ddof"] = int(c["std_ddof"])
    for name in ("eps", "correct_threshold", "lam", "zv_pos_base", "zv_neg_base"):
        out[name] = _exact(c[name], f"config.{name}")
    if out["eps"] <= 0:
        raise ValueError(f"config.eps: must be > 0, got {c['eps']!r}")
    if out["lam"] < 0:
        raise ValueError(f"config.lam: must be >= 0, got {c['lam']!r}")
    for name in ("zv_pos_base", "zv_neg_base"):
        if out[name] < 0:
            raise ValueError(f"config.{name}: must be >= 0, got {c[name]!r}")
    d = c["lam_decay_steps"]
    if isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 0:
        raise ValueError(f"config.lam_decay_steps: must be an int >= 0, got {d!r}")
    out["lam_decay_steps"] = int(d)
    for name in ("zv_scale_with_lam", "flip_correct", "flip_wrong"):
        if not isinstance(c[name], bool):
            raise TypeError(f"config.{name}: must be a bool, got {c[name]!r}")
        out[name] = c[name]
    for name in ("w_clip_correct", "w_clip_wrong", "adv_clip", "deadband"):
        pair = c[name]
        if isinstance(pair, (str, bytes)) or not hasattr(pair, "__len__") or len(pair) != 2:
            raise TypeError(f"config.{name}: must be a (lo, hi) pair, got {pair!r}")
        lo, hi = (_exact(v, f"config.{name}") for v in pair)
        if lo > hi:
            raise ValueError(f"config.{name}: needs lo <= hi, got {pair!r}")
        out[name] = (lo, hi)
    for name in ("w_clip_correct", "w_clip_wrong"):
        if out[name][0] < 0:
            raise ValueError(f"config.{name}: lo must be >= 0, got {c[name]!r}")
    if not out["adv_clip"][0] <= 0 <= out["adv_clip"][1]:
        raise ValueError(f"config.adv_clip: must satisfy lo <= 0 <= hi, got {c['adv_clip']!r}")
    if not out["deadband"][0] > 0:
        raise ValueError(f"config.deadband: lo must be > 0, got {c['deadband']!r}")
    return out


def _decay_fraction(step: int, d: int) -> Fraction:
    """1 − min(step, D)/D for D > 0, else 1 (exact)."""
    return Fraction(1) if d == 0 else 1 - Fraction(min(step, d), d)


def lam_at(config: dict | None, step: int = 0) -> Fraction:
    """λ(step) = λ0·(1 − min(step, D)/D) when D = lam_decay_steps > 0, else λ0 (exact)."""
    return _lam_resolved(resolve_config(config), _step(step))


def zv_scale(config: dict | None, step: int = 0) -> Fraction:
    """s: clip(λ(step)/λ0, 0, 1) if zv_scale_with_lam (0 when λ0 = 0), else 1 (exact)."""
    return _zv_scale_resolved(resolve_config(config), _step(step))


def _lam_resolved(c: dict, step: int) -> Fraction:
    return c["lam"] * _decay_fraction(step, c["lam_decay_steps"])


def _zv_scale_resolved(c: dict, step: int) -> Fraction:
    if not c["zv_scale_with_lam"]:
        return Fraction(1)
    if c["lam"] == 0:
        return Fraction(0)
    # λ(step)/λ0 is the decay fraction itself; the clip documents the contract's bound.
    return _clip(_decay_fraction(step, c["lam_decay_steps"]), Fraction(0), Fraction(1))


# ----------------------------------------------------------------------------------
# Step 1 — base advantages
# ----------------------------------------------------------------------------------
def _groups(ids: list[int]) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for i, key in enumerate(ids):
        groups.setdefault(key, []).append(i)
    return groups


def _variance(values: list[Fraction], ddof: int) -> Fraction:
    n = len(values)
    mean = sum(values, Fraction(0)) / n
    return sum(((v - mean) ** 2 for v in values), Fraction(0)) / (n - ddof)


def _centered_scaled(r: list[Fraction], members: list[int], scale: str, ddof: int,
                     eps: Fraction, batch_var: Fraction | None) -> dict[int, Any]:
    """(r_i − μ_g)/max(σ, eps) for the members of one group (σ per ``scale``), exact
    up to the one square root. A zero numerator gives exactly 0 without touching σ, so
    a one-member group never needs a std (which ddof = 1 would leave undefined)."""
    vals = [r[i] for i in members]
    mean = sum(vals, Fraction(0)) / len(vals)
    out: dict[int, Any] = {}
    if scale == "none":
        return {i: r[i] - mean for i in members}
    var = None
    for i in members:
        num = r[i] - mean
        if num == 0:
            out[i] = Fraction(0)
            continue
        if var is None:
            var = _variance(vals, ddof) if scale == "group" else batch_var
        # max(σ, eps) decided exactly: σ ≥ eps ⇔ var ≥ eps².
        out[i] = _mpf(num) / _MP.sqrt(_mpf(var)) if var >= eps * eps else num / eps
    return out


def _base_exact(rewards: Any, group_ids: Any, c: dict, step: int) -> list[Any]:
    r = _rewards(rewards)
    ids = _group_ids(group_ids, len(r))
    s = _zv_scale_resolved(c, step)
    threshold = c["correct_threshold"]
    batch_var = _variance(r, c["std_ddof"]) if c["scale"] == "batch" and len(r) > c["std_ddof"] else None
    base: list[Any] = [None] * len(r)
    for members in _groups(ids).values():
        correct = [r[i] > threshold for i in members]
        if all(correct):
            for i in members:
                base[i] = c["zv_pos_base"] * s
        elif not any(correct):
            for i in members:
                base[i] = -c["zv_neg_base"] * s
        else:
            for i, v in _centered_scaled(r, members, c["scale"], c["std_ddof"], c["eps"],
                                         batch_var).items():
                base[i] = v
    return base


def base_advantages(rewards: Any, group_ids: Any, config: dict | None = None, step: int = 0) -> list[float]:
    """Step 1: b [N] from rewards [N] and group_ids [N] (see spec/CAST.md)."""
    c = resolve_config(config)
    step = _step(step)
    return [_to_float(b) for b in _base_exact(rewards, group_ids, c, step)]


# ----------------------------------------------------------------------------------
# Step 2 — token advantages
# ----------------------------------------------------------------------------------
def _weight(x: Any, lo: Any, hi: Any, lam: Any) -> Any:
    """W(x, lo, hi) = max(0, 1 + λ·(clip(x, lo, hi) − 1))."""
    return max(_MP.mpf(0), 1 + lam * (_clip(x, lo, hi) - 1))


def _token_exact(b: Any, g: float, c: dict, lam: Any) -> Any:
    if b == 0:
        return Fraction(0)
    g = _MP.mpf(g)  # exact: a float (±inf included) fits in 166 bits
    dlo, dhi = (_mpf(v) for v in c["deadband"])
    if dlo < dhi and dlo <= _MP.exp(g) <= dhi:
        g = _MP.mpf(0)
    lc, hc = (_mpf(v) for v in c["w_clip_correct"])
    lw, hw = (_mpf(v) for v in c["w_clip_wrong"])
    one = _MP.mpf(1)
    b = _mpf(b)
    if b > 0:
        if c["flip_correct"] and g < 0:
            a = -abs(b) * _weight(_MP.exp(-g), max(one, lw), hw, lam)
        else:
            a = b * _weight(_MP.exp(g), lc, hc, lam)
    else:
        if c["flip_wrong"] and g > 0:
            a = abs(b) * _weight(_MP.exp(g), max(one, lc), hc, lam)
        else:
            a = b * _weight(_MP.exp(-g), lw, hw, lam)
    alo, ahi = (_mpf(v) for v in c["adv_clip"])
    return _clip(a, alo, ahi)


def _tokens(base_exact: list[Any], gaps: Any, mask: Any, c: dict, step: int) -> list[list[float]]:
    n = len(base_exact)
    _, width = _matrix(gaps, "gaps", n)
    m = _mask(mask, n, width)
    g = _masked_values(gaps, "gaps", m, width, allow_inf=True)
    lam = _mpf(_lam_resolved(c, step))
    out = []
    for i in range(n):
        out.append([_to_float(_token_exact(base_exact[i], g[i][t], c, lam)) if m[i][t] else 0.0
                    for t in range(width)])
    return out


def token_advantages(base: Any, gaps: Any, mask: Any, config: dict | None = None,
                     step: int = 0) -> list[list[float]]:
    """Step 2: Â [N, T] from base b [N], gaps g [N, T] and mask m [N, T]."""
    c = resolve_config(config)
    step = _step(step)
    return _tokens(_finite_vector(base, "base"), gaps, mask, c, step)


def cast_advantages(rewards: Any, group_ids: Any, gaps: Any, mask: Any,
                    config: dict | None = None, step: int = 0) -> list[list[float]]:
    """Steps 1 + 2: Â [N, T]. The exact base (not its float rounding) feeds Step 2."""
    c = resolve_config(config)
    step = _step(step)
    base = _base_exact(rewards, group_ids, c, step)
    return _tokens(base, gaps, mask, c, step)


# ----------------------------------------------------------------------------------
# Policy loss and its gradient with respect to logp
# ----------------------------------------------------------------------------------
def _loss_parts(logp, old_logp, advantages, mask, clip_low, clip_high, agg, ref_logp, beta, max_len):
    if agg not in AGGREGATIONS:
        raise ValueError(f"agg: must be one of {AGGREGATIONS}, got {agg!r}")
    cl = _exact(clip_low, "clip_low")
    ch = _exact(clip_high, "clip_high")
    if cl < 0 or ch < 0:
        raise ValueError(f"clip_low/clip_high: must be >= 0, got {clip_low!r}, {clip_high!r}")
    b = _exact(beta, "beta")
    if b < 0:
        raise ValueError(f"beta: must be >= 0, got {beta!r}")
    if b > 0 and ref_logp is None:
        raise ValueError("ref_logp: required when beta > 0")
    rows = _plain(logp)
    if rows is None or not isinstance(rows, Iterable):
        raise TypeError("logp: must be a 2-D [N, T] nested sequence")
    n = len(list(rows))
    _check_n(n)
    _, width = _matrix(logp, "logp", n)
    m = _mask(mask, n, width)
    lp = _masked_values(logp, "logp", m, width, allow_inf=False)
    old = _masked_values(old_logp, "old_logp", m, width, allow_inf=False)
    adv = _masked_values(advantages, "advantages", m, width, allow_inf=False)
    ref = _masked_values(ref_logp, "ref_logp", m, width, allow_inf=False) if (ref_logp is not None and b > 0) else None
    if max_len is None:
        L = width
    else:
        if isinstance(max_len, bool) or not isinstance(max_len, numbers.Integral) or max_len < 1:
            raise ValueError(f"max_len: must be an int >= 1, got {max_len!r}")
        L = int(max_len)

    lo, hi = _mpf(1 - cl), _mpf(1 + ch)
    beta_mp = _mpf(b)
    # Per-token loss ℓ and d ℓ / d logp, masked positions never read.
    ell = [[None] * width for _ in range(n)]
    dell = [[None] * width for _ in range(n)]
    for i in range(n):
        for t in range(width):
            if not m[i][t]:
                continue
            a = _MP.mpf(adv[i][t])
            rho = _MP.exp(_MP.mpf(lp[i][t]) - _MP.mpf(old[i][t]))
            rc = _clip(rho, lo, hi)
            ell[i][t] = -min(rho * a, rc * a)
            clipped = (a > 0 and rho > hi) or (a < 0 and rho < lo)
            dell[i][t] = _MP.mpf(0) if clipped else -rho * a
            if ref is not None:
                diff = _MP.mpf(ref[i][t]) - _MP.mpf(lp[i][t])
                ell[i][t] += beta_mp * (_MP.exp(diff) - diff - 1)
                dell[i][t] += beta_mp * (1 - _MP.exp(diff))
    # Aggregation weights w_it, so loss = Σ w·ℓ and d loss/d logp = w·dℓ.
    w = [[_MP.mpf(0)] * width for _ in range(n)]
    if agg == "token-mean":
        total = max(sum(sum(1 for v in row if v) for row in m), 1)
        for i in range(n):
            for t in range(width):
                if m[i][t]:
                    w[i][t] = _MP.mpf(1) / total
    elif agg == "seq-mean-token-mean":
        live = [i for i in range(n) if any(m[i])]
        n_rows = max(len(live), 1)
        for i in live:
            cnt = sum(1 for v in m[i] if v)
            for t in range(width):
                if m[i][t]:
                    w[i][t] = _MP.mpf(1) / (cnt * n_rows)
    else:
        denom = max(n * L, 1)
        for i in range(n):
            for t in range(width):
                if m[i][t]:
                    w[i][t] = _MP.mpf(1) / denom
    return n, width, m, ell, dell, w


def policy_loss(logp: Any, old_logp: Any, advantages: Any, mask: Any, *, clip_low: float = 0.2,
                clip_high: float = 0.28, agg: str = "token-mean", ref_logp: Any = None,
                beta: float = 0.0, max_len: int | None = None) -> float:
    """Clipped-surrogate loss (+ beta·k3), aggregated per ``agg``; a Python float."""
    n, width, m, ell, _, w = _loss_parts(logp, old_logp, advantages, mask, clip_low, clip_high,
                                         agg, ref_logp, beta, max_len)
    total = _MP.mpf(0)
    for i in range(n):
        for t in range(width):
            if m[i][t]:
                total += w[i][t] * ell[i][t]
    return _to_float(total)


def policy_loss_grad(logp: Any, old_logp: Any, advantages: Any, mask: Any, *, clip_low: float = 0.2,
                     clip_high: float = 0.28, agg: str = "token-mean", ref_logp: Any = None,
                     beta: float = 0.0, max_len: int | None = None) -> list[list[float]]:
    """d policy_loss / d logp, [N, T] (analytic; exactly 0 where masked or clipped)."""
    n, width, m, _, dell, w = _loss_parts(logp, old_logp, advantages, mask, clip_low, clip_high,
                                          agg, ref_logp, beta, max_len)
    return [[_to_float(w[i][t] * dell[i][t]) if m[i][t] else 0.0 for t in range(width)]
            for i in range(n)]


# ----------------------------------------------------------------------------------
# Baselines
# ----------------------------------------------------------------------------------
def _grpo_exact(rewards: Any, group_ids: Any, c: dict) -> list[Any]:
    """Plain GRPO: (r − μ_g)/max(σ, eps) per scale for every group (0 when all equal)."""
    r = _rewards(rewards)
    ids = _group_ids(group_ids, len(r))
    batch_var = _variance(r, c["std_ddof"]) if c["scale"] == "batch" and len(r) > c["std_ddof"] else None
    out: list[Any] = [None] * len(r)
    for members in _groups(ids).values():
        for i, v in _centered_scaled(r, members, c["scale"], c["std_ddof"], c["eps"], batch_var).items():
            out[i] = v
    return out


def _broadcast(values: list[Any], mask: Any) -> list[list[float]]:
    n = len(values)
    _, width = _matrix(mask, "mask", n)
    m = _mask(mask, n, width)
    return [[_to_float(values[i]) if m[i][t] else 0.0 for t in range(width)] for i in range(n)]


def grpo_advantages(rewards: Any, group_ids: Any, mask: Any, config: dict | None = None) -> list[list[float]]:
    """GRPO baseline: Â_it = (r_i − μ_g)/max(σ, eps) (scale per config), 0 for groups of equal rewards."""
    c = resolve_config(config)
    return _broadcast(_grpo_exact(rewards, group_ids, c), mask)


def rlsd_advantages(rewards: Any, group_ids: Any, gaps: Any, mask: Any, *, step: int = 0,
                    lam: float = 0.5, lam_decay_steps: int = 50, eps_w: float = 0.2,
                    config: dict | None = None) -> list[list[float]]:
    """RLSD: Â = A·((1 − λ) + λ·clip(exp(sign(A)·g), 1 − ε_w, 1 + ε_w)), A the GRPO advantage."""
    c = resolve_config(config)
    step = _step(step)
    lam0 = _exact(lam, "lam")
    if lam0 < 0:
        raise ValueError(f"lam: must be >= 0, got {lam!r}")
    if isinstance(lam_decay_steps, bool) or not isinstance(lam_decay_steps, numbers.Integral) or lam_decay_steps < 0:
        raise ValueError(f"lam_decay_steps: must be an int >= 0, got {lam_decay_steps!r}")
    ew = _exact(eps_w, "eps_w")
    if ew < 0:
        raise ValueError(f"eps_w: must be >= 0, got {eps_w!r}")
    A = _grpo_exact(rewards, group_ids, c)
    n = len(A)
    _, width = _matrix(gaps, "gaps", n)
    m = _mask(mask, n, width)
    g = _masked_values(gaps, "gaps", m, width, allow_inf=True)
    lam_t = _mpf(lam0 * _decay_fraction(step, int(lam_decay_steps)))
    lo, hi = _mpf(1 - ew), _mpf(1 + ew)
    out = []
    for i in range(n):
        a = _mpf(A[i])
        row = []
        for t in range(width):
            if not m[i][t] or a == 0:
                row.append(0.0)
                continue
            sign = 1 if a > 0 else -1
            ratio = _clip(_MP.exp(sign * _MP.mpf(g[i][t])), lo, hi)
            row.append(_to_float(a * ((1 - lam_t) + lam_t * ratio)))
        out.append(row)
    return out


def rl_zvp_advantages(rewards: Any, group_ids: Any, entropies: Any, mask: Any, *, alpha: float = 0.1,
                      config: dict | None = None) -> list[list[float]]:
    """RL-ZVP: mixed groups GRPO; all-correct α·H_t; all-wrong −α·(max_k H_k − H_t) (max over the row's mask)."""
    c = resolve_config(config)
    a = _exact(alpha, "alpha")
    if a < 0:
        raise ValueError(f"alpha: must be >= 0, got {alpha!r}")
    r = _rewards(rewards)
    ids = _group_ids(group_ids, len(r))
    n = len(r)
    _, width = _matrix(entropies, "entropies", n)
    m = _mask(mask, n, width)
    h = _masked_values(entropies, "entropies", m, width, allow_inf=False)
    batch_var = _variance(r, c["std_ddof"]) if c["scale"] == "batch" and n > c["std_ddof"] else None
    out: list[list[float]] = [[0.0] * width for _ in range(n)]
    for members in _groups(ids).values():
        correct = [r[i] > c["correct_threshold"] for i in members]
        if all(correct) or not any(correct):
            for i in members:
                hs = [Fraction(h[i][t]) for t in range(width) if m[i][t]]
                if not hs:
                    continue
                hmax = max(hs)
                for t in range(width):
                    if m[i][t]:
                        ht = Fraction(h[i][t])
                        out[i][t] = _to_float(a * ht if all(correct) else -a * (hmax - ht))
        else:
            base = _centered_scaled(r, members, c["scale"], c["std_ddof"], c["eps"], batch_var)
            for i in members:
                for t in range(width):
                    if m[i][t]:
                        out[i][t] = _to_float(base[i])
    return out


def opsd_advantages(gaps: Any, mask: Any) -> list[list[float]]:
    """OPSD sampled-token: Â = g inside the mask, 0 outside (no verifier)."""
    rows = _plain(gaps)
    if rows is None or not isinstance(rows, Iterable):
        raise TypeError("gaps: must be a 2-D [N, T] nested sequence")
    n = len(list(rows))
    _check_n(n)
    _, width = _matrix(gaps, "gaps", n)
    m = _mask(mask, n, width)
    g = _masked_values(gaps, "gaps", m, width, allow_inf=True)
    return [[(g[i][t] + 0.0) if m[i][t] else 0.0 for t in range(width)] for i in range(n)]
