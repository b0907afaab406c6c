"""`math_reward`: the trainer's default verifiable reward (1.0 correct, 0.0 otherwise)."""

from __future__ import annotations

from .equivalence import is_equivalent
from .extract import extract_answer
from .limits import DEFAULT_TIMEOUT

__all__ = ["math_reward", "reference_answer"]


def reference_answer(answer: str) -> str:
    """The reference's final answer: the last ``\\boxed{}`` or the text after ``####``
    when present (dataset solutions), else the whole string stripped."""
    if not isinstance(answer, str):
        raise TypeError(f"answer: expected str, got {type(answer).__name__}")
    found = extract_answer(answer, strategies=("boxed", "gsm8k"))
    return found if found is not None else answer.strip()


def math_reward(completion: str, answer: str, *, rel_tol: float = 1e-6,
                timeout: float = DEFAULT_TIMEOUT) -> float:
    """Reward r in {0.0, 1.0}: 1.0 when the answer extracted from ``completion``
    (`extract_answer`, default strategies) is equivalent (`is_equivalent`) to the
    reference ``answer`` (a bare answer, or a solution with ``\\boxed{}`` / ``####``).

    Args:
        completion: the model's completion text (untrusted).
        answer: the reference answer or reference solution.
        rel_tol, timeout: passed to `is_equivalent`.

    Returns:
        1.0 or 0.0; 0.0 when no answer can be extracted. Never raises for str inputs
        (TypeError for non-str).
    """
    if not isinstance(completion, str):
        raise TypeError(f"completion: expected str, got {type(completion).__name__}")
    ref = reference_answer(answer)
    pred = extract_answer(completion)
    if pred is None or not ref:
        return 0.0
    return 1.0 if is_equivalent(pred, ref, rel_tol=rel_tol, timeout=timeout) else 0.0
