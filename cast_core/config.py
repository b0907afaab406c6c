"""`CASTConfig`: the parameters of the CAST advantage estimator, and the λ schedule.

Names and defaults are those of the contract (`spec/CAST.md`, restating the CAST
authors' public estimator). The dataclass is frozen and validated on construction:
every bad value raises ``ValueError`` (or ``TypeError`` for a wrong type) naming the
field, so a typo in a training config fails at start-up, not 300 steps in.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = ["CASTConfig", "lam_at", "linear_decay", "zv_scale_at", "check_step"]

SCALES = ("group", "batch", "none")


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class CASTConfig:
    """Parameters of the CAST token-advantage estimator (frozen, validated).

    Every field carries its help text in ``dataclasses.fields(CASTConfig)[i].metadata["help"]``.
    Clip pairs are ``(lo, hi)`` tuples; lists are accepted and converted.
    """

    scale: str = field(default="group", metadata=_help(
        'Mixed groups: "group" divides r - mean by the group std, "batch" by the std of '
        'all N rewards, "none" does not divide (Dr. GRPO).'))
    std_ddof: int = field(default=0, metadata=_help(
        "Delta degrees of freedom of every std: 0 = population std (the CAST authors' "
        "code), 1 = sample std (TRL)."))
    eps: float = field(default=1e-6, metadata=_help(
        "Floor of the std: mixed-group bases divide by max(std, eps). Must be > 0."))
    correct_threshold: float = field(default=0.5, metadata=_help(
        "A completion counts as correct when its reward is strictly greater than this."))
    lam: float = field(default=0.5, metadata=_help(
        "lambda_0, the strength of the teacher shaping (>= 0)."))
    lam_decay_steps: int = field(default=0, metadata=_help(
        "D: lambda(step) = lambda_0 * (1 - min(step, D) / D) when D > 0; 0 keeps lambda "
        "constant. The authors' scripts set D to the run length."))
    zv_pos_base: float = field(default=1.0, metadata=_help(
        "B+: base advantage of every member of an all-correct group (>= 0)."))
    zv_neg_base: float = field(default=1.0, metadata=_help(
        "B-: every member of an all-wrong group gets base -B- (B- >= 0)."))
    zv_scale_with_lam: bool = field(default=True, metadata=_help(
        "Multiply B+ and B- by s = clip(lambda(step) / lambda_0, 0, 1) (s = 0 when lambda_0 = 0)."))
    w_clip_correct: tuple[float, float] = field(default=(0.8, 1.05), metadata=_help(
        "(lo, hi) clip of the teacher ratio on the positive side; lo >= 0."))
    w_clip_wrong: tuple[float, float] = field(default=(0.95, 1.2), metadata=_help(
        "(lo, hi) clip of the teacher ratio on the negative side; lo >= 0."))
    adv_clip: tuple[float, float] = field(default=(-1.2, 1.2), metadata=_help(
        "(lo, hi) final clip of every token advantage; lo <= 0 <= hi."))
    flip_correct: bool = field(default=True, metadata=_help(
        "Teacher-negative tokens (g < 0) of positive-base completions flip negative."))
    flip_wrong: bool = field(default=True, metadata=_help(
        'Teacher-positive tokens (g > 0) of negative-base completions flip positive ("wrong boost").'))
    deadband: tuple[float, float] = field(default=(1.0, 1.0), metadata=_help(
        "(lo, hi): when lo < hi a gap with lo <= exp(g) <= hi counts as 0 "
        '(the authors\' "gap005" variant is (0.95, 1.05)); 0 < lo <= hi.'))

    def __post_init__(self) -> None:
        if not isinstance(self.scale, str) or self.scale not in SCALES:
            raise ValueError(f"CASTConfig.scale: must be one of {SCALES}, got {self.scale!r}")
        if isinstance(self.std_ddof, bool) or self.std_ddof not in (0, 1):
            raise ValueError(f"CASTConfig.std_ddof: must be 0 or 1, got {self.std_ddof!r}")
        for name in ("eps", "correct_threshold", "lam", "zv_pos_base", "zv_neg_base"):
            _check_real(name, getattr(self, name))
        if self.eps <= 0:
            raise ValueError(f"CASTConfig.eps: must be > 0, got {self.eps!r}")
        if self.lam < 0:
            raise ValueError(f"CASTConfig.lam: must be >= 0, got {self.lam!r}")
        if (isinstance(self.lam_decay_steps, bool) or not isinstance(self.lam_decay_steps, numbers.Integral)
                or self.lam_decay_steps < 0):
            raise ValueError(f"CASTConfig.lam_decay_steps: must be an int >= 0, got {self.lam_decay_steps!r}")
        for name in ("zv_pos_base", "zv_neg_base"):
            if getattr(self, name) < 0:
                raise ValueError(f"CASTConfig.{name}: must be >= 0, got {getattr(self, name)!r}")
        for name in ("zv_scale_with_lam", "flip_correct", "flip_wrong"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"CASTConfig.{name}: must be a bool, got {getattr(self, name)!r}")
        for name in ("w_clip_correct", "w_clip_wrong", "adv_clip", "deadband"):
            lo, hi = _pair(name, getattr(self, name))
            object.__setattr__(self, name, (lo, hi))
        if self.w_clip_correct[0] < 0:
            raise ValueError(f"CASTConfig.w_clip_correct: lo must be >= 0, got {self.w_clip_correct!r}")
        if self.w_clip_wrong[0] < 0:
            raise ValueError(f"CASTConfig.w_clip_wrong: lo must be >= 0, got {self.w_clip_wrong!r}")
        if not self.adv_clip[0] <= 0 <= self.adv_clip[1]:
            raise ValueError(f"CASTConfig.adv_clip: must satisfy lo <= 0 <= hi, got {self.adv_clip!r}")
        if not self.deadband[0] > 0:
            raise ValueError(f"CASTConfig.deadband: lo must be > 0, got {self.deadband!r}")
        # Normalise numeric scalars to plain Python types so configs compare and serialise cleanly.
        object.__setattr__(self, "std_ddof", int(self.std_ddof))
        object.__setattr__(self, "lam_decay_steps", int(self.lam_decay_steps))
        for name in ("eps", "correct_threshold", "lam", "zv_pos_base", "zv_neg_base"):
            object.__setattr__(self, name, float(getattr(self, name)))

    # -- conveniences ---------------------------------------------------------------
    def replace(self, **changes: Any) -> "CASTConfig":
        """A copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (tuples become lists), e.g. for JSON/TOML."""
        return {f.name: (list(v) if isinstance(v, tuple) else v)
                for f in dataclasses.fields(self) for v in [getattr(self, f.name)]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CASTConfig":
        """Build from a mapping; unknown keys are a ``ValueError`` naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"CASTConfig: unknown field(s) {unknown}; known fields: {sorted(known)}")
        return cls(**dict(data))


def _check_real(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"CASTConfig.{name}: must be a real number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"CASTConfig.{name}: must be finite, got {value!r}")


def _pair(name: str, value: Any) -> tuple[float, float]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise TypeError(f"CASTConfig.{name}: must be a (lo, hi) pair, got {value!r}")
    lo, hi = value
    for v in (lo, hi):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"CASTConfig.{name}: entries must be real numbers, got {value!r}")
        if not math.isfinite(v):
            raise ValueError(f"CASTConfig.{name}: entries must be finite, got {value!r}")
    if lo > hi:
        raise ValueError(f"CASTConfig.{name}: needs lo <= hi, got {value!r}")
    return float(lo), float(hi)


def check_step(step: Any) -> int:
    """Validate the optimizer step (an int >= 0) and return it as a Python int."""
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise TypeError(f"step: must be an int >= 0, got {step!r}")
    if step < 0:
        raise ValueError(f"step: must be >= 0, got {step!r}")
    return int(step)


def linear_decay(lam0: float, decay_steps: int, step: int) -> float:
    """The λ schedule of CAST and RLSD: λ(step) = λ0·(1 − min(step, D)/D) for D > 0, else λ0.

    Args: lam0 λ0 (validated by the caller's config); decay_steps D int >= 0; step int >= 0
    (``check_step``). Returns a Python float.
    """
    step = check_step(step)
    if decay_steps == 0:
        return float(lam0)
    return lam0 * (1.0 - min(step, decay_steps) / decay_steps)


def lam_at(config: CASTConfig, step: int) -> float:
    """λ(step) = λ0·(1 − min(step, D)/D) for D = lam_decay_steps > 0, else λ0 (:func:`linear_decay`)."""
    return linear_decay(config.lam, config.lam_decay_steps, step)


def zv_scale_at(config: CASTConfig, step: int) -> float:
    """s = clip(λ(step)/λ0, 0, 1) when ``zv_scale_with_lam`` (0 when λ0 = 0), else 1."""
    if not config.zv_scale_with_lam:
        check_step(step)
        return 1.0
    step = check_step(step)
    if config.lam == 0.0:
        return 0.0
    # λ(step)/λ0 as the schedule of λ0 = 1 (no division), so it is exact for integer steps.
    return linear_decay(1.0, config.lam_decay_steps, step)
