"""Answer verification for RL with verifiable rewards (numpy/sympy/stdlib; no torch).

- `extract_answer(text)`: the final answer of a completion (last ``\\boxed{}``, "the
  answer is", ``####``, last number).
- `is_equivalent(pred, ref, *, rel_tol=1e-6, timeout=5.0)`: numeric, LaTeX, structured
  and symbolic equivalence, bounded in size and wall-clock time.
- `math_reward(completion, answer)`: 1.0 / 0.0, the trainer's default reward.

Model output is never evaluated as code: answers go through a whitelisted tokenizer and
parser (`parse`), exact arithmetic with size caps (`evaluate`, `limits`), and a killable
sympy worker process (`_worker`). See docs/verify.md.
"""

from .equivalence import is_equivalent
from .extract import DEFAULT_STRATEGIES, STRATEGIES, extract_answer
from .limits import DEFAULT_TIMEOUT
from .parse import ParseError, parse_answer
from .reward import math_reward, reference_answer
from ._worker import get_pool


def warmup() -> None:
    """Start the symbolic worker process now rather than on the first symbolic call."""
    get_pool().warmup()


__all__ = [
    "extract_answer",
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
