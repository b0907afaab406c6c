"""Checks of run settings that every front end shares (``cast-train``'s ``TrainConfig``,
TRL's ``CASTGRPOConfig``, verl's ``algorithm.cast``): one rule per concept, so each config refuses the same values with
the same reason.

- :func:`check_group_size` — G completions per prompt, G >= 2.
- :func:`check_teacher_schedule` — the lagged teacher's K (snapshot refresh) and d (EMA decay).
- :func:`template_fields` / :func:`check_teacher_template` — the teacher-context template:
  plain ``{name}`` fields only, ``{prompt}`` required, any other field privileged.

Every check raises ``ValueError``/``TypeError`` whose message starts with the caller's field
name (``name``), e.g. ``"TrainConfig.group_size: ..."``.
"""

from __future__ import annotations

import numbers
import string
from typing import Any, Collection, Optional

__all__ = ["check_group_size", "check_teacher_schedule", "template_fields", "check_teacher_template"]


def check_group_size(value: Any, name: str) -> int:
    """``value`` (completions sampled per prompt) as an int >= 2.

    A group of one has no relative advantage: its reward minus its own group mean is always
    0, so GRPO gets no gradient at all and CAST sees only zero-variance groups (every
    completion is "all correct" or "all wrong" by itself).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: must be an int >= 2, got {value!r}")
    if value < 2:
        raise ValueError(
            f"{name}: must be >= 2, got {value!r}: a group of one completion has no relative advantage "
            "(its reward minus its group mean is always 0, so GRPO learns nothing and CAST sees only "
            "zero-variance groups); sample at least 2 completions per prompt (the CAST authors use 8)")
    return int(value)


def check_teacher_schedule(refresh_steps: Any, ema_decay: Any, *, names: tuple[str, str]) -> tuple[int, float]:
    """The lagged teacher's schedule parameters, as ``(K, d)``.

    ``refresh_steps`` K (an int >= 1): the snapshot teacher copies the policy after every K-th
    update. ``ema_decay`` d (a real in [0, 1]): the EMA teacher becomes d·θ_T + (1 − d)·θ after
    every update (d = 1 never moves, d = 0 follows the policy). ``names`` are the caller's field
    names for the two, used in the messages. The schedule itself is
    ``cast_torch.train.teacher.lagged_update_weight``.
    """
    k_name, d_name = names
    if isinstance(refresh_steps, bool) or not isinstance(refresh_steps, numbers.Integral) or refresh_steps < 1:
        raise ValueError(f"{k_name}: must be an int >= 1, got {refresh_steps!r}")
    if (isinstance(ema_decay, bool) or not isinstance(ema_decay, numbers.Real)
            or not 0.0 <= float(ema_decay) <= 1.0):   # NaN fails the comparison too
        raise ValueError(f"{d_name}: must be a number in [0, 1], got {ema_decay!r}")
    return int(refresh_steps), float(ema_decay)


def template_fields(template: Any, name: str = "teacher template") -> list[str]:
    """The replacement fields of a teacher-context template, in order.

    Only plain identifiers are allowed (``{prompt}``, ``{answer}``): no positional ``{}``, no
    attribute or index access (``{prompt.__class__}``, ``{prompt[0]}``), no conversion
    (``!r``) and no format spec (``{prompt:>200000000}`` would allocate 200 MB per row). The
    template is user configuration formatted with dataset values, and ``str.format`` field
    syntax can reach arbitrary attributes.

    Raises:
        TypeError: ``template`` is not a str.
        ValueError: malformed braces or a field that is not a plain identifier.
    """
    if not isinstance(template, str):
        raise TypeError(f"{name}: must be a str, got {type(template).__name__}")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as err:
        raise ValueError(f"{name}: malformed braces ({err}) in {template!r}; write a literal brace as {{{{ or }}}}") \
            from None
    fields = []
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            shown = field + ("!" + conversion if conversion else "") + (":" + spec if spec else "")
            raise ValueError(
                f"{name}: field {{{shown}}} in {template!r} is not allowed; use plain names such as {{prompt}} "
                "(no format specs, conversions, attribute access or indexing)")
        fields.append(field)
    return fields


def check_teacher_template(template: Any, *, allow_privileged: bool, name: str, privileged_flag: str,
                           allowed: Optional[Collection[str]] = None) -> list[str]:
    """Validate a teacher-context template and return its fields (see :func:`template_fields`).

    Args:
        template: the template text; it must contain ``{prompt}``.
        allow_privileged: whether fields other than ``{prompt}`` (e.g. ``{answer}``, which
            shows the teacher the reference answer) are accepted. CAST's teacher is answer-free.
        name: the caller's field name, first in every message.
        privileged_flag: the caller's switch for privileged templates (named in the message).
        allowed: the only field names the caller can fill (``None``: any identifier, e.g. a
            dataset column).
    """
    fields = template_fields(template, name)
    if allowed is not None:
        unknown = sorted(set(fields) - set(allowed))
        if unknown:
            raise ValueError(f"{name}: unknown slot(s) {unknown} in {template!r}; allowed: "
                             + ", ".join("{" + f + "}" for f in sorted(allowed)))
    if "prompt" not in fields:
        raise ValueError(f"{name}: must contain {{prompt}}, got {template!r}")
    extra = sorted(set(fields) - {"prompt"})
    if extra and not allow_privileged:
        raise ValueError(
            f"{name}: template {template!r} shows the teacher {extra} beyond the prompt (a privileged "
            f"teacher, e.g. one that sees the reference answer); CAST's teacher is answer-free. Set "
            f"{privileged_flag} only for diagnostics.")
    return fields
