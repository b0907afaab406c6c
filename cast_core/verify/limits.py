"""Size and time limits of the answer verifier.

Every parse and every comparison is bounded by these caps, checked *before* any big
number is built: a model completion is untrusted input, and a verifier that hangs or
exhausts memory on ``9**9**9**9`` stalls a whole training step. The values are module
constants (not config) because they are safety properties, not tuning knobs; the one
knob a caller needs, the wall-clock ``timeout``, is a keyword of ``is_equivalent``.
"""

from __future__ import annotations

__all__ = [
    "MAX_TEXT_CHARS",
    "MAX_ANSWER_CHARS",
    "MAX_TOKENS",
    "MAX_DEPTH",
    "MAX_INT_DIGITS",
    "MAX_EXPONENT",
    "MAX_RESULT_BITS",
    "MAX_FACTORIAL",
    "MAX_ROOT_BITS",
    "MAX_ELEMENTS",
    "DEFAULT_TIMEOUT",
    "STARTUP_TIMEOUT",
    "WORKER_MEMORY_BYTES",
]

MAX_TEXT_CHARS = 20_000
"""`extract_answer` looks only at the last this-many characters of a completion (the
final answer sits at the end; a 1 MB completion costs the same as a 20 kB one)."""

MAX_ANSWER_CHARS = 2_000
"""An extracted answer or a reference longer than this is rejected (never equivalent)."""

MAX_TOKENS = 400
"""Token cap of one answer expression."""

MAX_DEPTH = 40
"""Bracket / operator nesting cap (checked by a linear scan before parsing)."""

MAX_INT_DIGITS = 1_000
"""Digits of one integer literal (and of the exponent of a scientific literal)."""

MAX_EXPONENT = 10_000
"""|n| of an integer power x^n; larger powers are rejected unless the base is 0 or ±1."""

MAX_RESULT_BITS = 70_000
"""Bit size cap of an exact intermediate (about 21k decimal digits); the size of a
power is estimated as |n|·bits(base) before it is computed."""

MAX_FACTORIAL = 1_000
"""Largest n accepted in n! (1000! has 2568 digits)."""

MAX_ROOT_BITS = 4_000
"""Bit size cap of a number under a radical (perfect-power tests cost grows with it)."""

MAX_ELEMENTS = 32
"""Elements of a tuple / set / interval union answer."""

DEFAULT_TIMEOUT = 1.0
"""Default wall-clock bound (seconds) of one `is_equivalent` call: what the cheap stages
cannot decide in this time is not equal (no input costs more than about 1 s)."""

STARTUP_TIMEOUT = 60.0
"""Bound (seconds) on starting the symbolic worker process (importing sympy on a loaded
machine); paid only when a worker is (re)started, on top of the per-call timeout."""

WORKER_MEMORY_BYTES = 4 << 30
"""Address-space limit (RLIMIT_AS, POSIX) of the symbolic worker process: a runaway
sympy computation fails with MemoryError (answer False) instead of exhausting the host."""
