"""Answer verification for RL with verifiable rewards (numpy/sympy/mpmath/stdlib; no torch).

- `extract_answer(text)`: the final answer of a completion (the last answer marker:
  ``\\boxed{}`` group, "the answer is", ``####``; else the last math span or plain
  number; never a fragment of an expression).
- `is_equivalent(pred, ref, *, rel_tol=1e-6, timeout=1.0, decimal_comma="auto",
  allow_relations=False)`: numeric, LaTeX, structured (lists, relations, matrices) and
  symbolic equivalence, bounded in size and time.
- `math_reward(completion, answer)`: 1.0 / 0.0, the trainer's default reward.

Model output is never evaluated as code: answers go through string clean-up
(`normalize`), a whitelisted tokenizer and parser (`parse`, `structure`), exact
arithmetic with size caps (`evaluate`, `limits`), an exact identity test mod a prime
(`modular`), high-precision numerics (`highprec`), relation and set logic (`relations`),
and, for what those leave open, a killable sympy worker process (`_worker`).
See docs/verify.md.
"""

from .equivalence import is_equivalent
from .extract import DEFAULT_STRATEGIES, STRATEGIES, extract_answer, extract_boxes, extract_choice
from .limits import DEFAULT_TIMEOUT
from .parse import ParseError
from .reward import math_reward, reference_answer
from .structure import parse_answer
from ._worker import get_pool


def warmup() -> None:
    """Start the symbolic worker process and load the high-precision library now,
    rather than on the first call that needs them."""
    from .highprec import decide
    decide(("n", 1, 1, False), ("n", 1, 1, False), [{}], inexact=False, rel_tol=0.0, need=1)
    get_pool().warmup()


__all__ = [
    "extract_answer",
    "extract_choice",
    "extract_boxes",
    "is_equivalent",
    "math_reward",
    "reference_answer",
    "parse_answer",
    "ParseError",
    "warmup",
    "STRATEGIES",
    "DEFAULT_STRATEGIES",
    "DEFAULT_TIMEOUT",
]
