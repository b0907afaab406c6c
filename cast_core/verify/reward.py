"""`math_reward`: the trainer's default verifiable reward (1.0 correct, 0.0 otherwise)."""

from __future__ import annotations

import re

from .equivalence import is_equivalent
from .extract import MARKERS, extract_answer, extract_boxes, extract_choice
from .limits import DEFAULT_TIMEOUT
from .normalize import normalize_latex
from .parse import ParseError
from .structure import parse_answer

__all__ = ["math_reward", "reference_answer"]

_MARKER = re.compile(r"\\boxed|\\fbox|####|\banswer\b", re.IGNORECASE)
_MC_REF = re.compile(r"\(?([A-J])\)?")


def reference_answer(answer: str) -> str:
    """The reference's final answer: a reference with an answer marker (``\\boxed{}``,
    ``####``, "the answer is") is a solution, and its answer is extracted with the
    marker strategies (a box group, such as ``\\boxed{1}`` and ``\\boxed{2}``, is one
    answer); any other reference is a bare answer, used whole."""
    if not isinstance(answer, str):
        raise TypeError(f"answer: expected str, got {type(answer).__name__}")
    if _MARKER.search(answer[-20_000:]):
        found = extract_answer(answer, strategies=MARKERS)
        if found is not None:
            return found
    return answer.strip()


def math_reward(completion: str, answer: str, *, rel_tol: float = 1e-6,
                timeout: float = DEFAULT_TIMEOUT, decimal_comma="auto",
                allow_relations: bool = False) -> float:
    """Reward r in {0.0, 1.0}: 1.0 when the answer extracted from ``completion``
    (`extract_answer`) is equivalent (`is_equivalent`) to the reference ``answer`` (a
    bare answer, or a solution with ``\\boxed{}`` / ``####``; see `reference_answer`).
    A reference that is one choice letter (``B``, ``(B)``) is matched by
    `extract_choice`. A reference that is a collection (``1, 2``, ``\\{1, 2\\}``) is also
    matched by all the completion's boxes read together (`extract_boxes`): a part
    boxed in each sentence. One reference value is matched by the final answer only.

    No answer, an answer rejected by a size cap, a fragment (the ``2`` of ``x^2``) or a
    hedge (several different final answers against one reference value) all get 0.0.

    Args:
        completion: the model's completion text (untrusted).
        answer: the reference answer or reference solution.
        rel_tol, timeout, decimal_comma, allow_relations: passed to `is_equivalent`.

    Returns:
        1.0 or 0.0. Never raises for str inputs (TypeError for non-str).
    """
    if not isinstance(completion, str):
        raise TypeError(f"completion: expected str, got {type(completion).__name__}")
    ref = reference_answer(answer)
    if not ref:
        return 0.0
    m = _MC_REF.fullmatch(normalize_latex(ref))
    if m:
        return 1.0 if extract_choice(completion) == m.group(1) else 0.0
    pred = extract_answer(completion)
    if pred is None:
        return 0.0
    opts = dict(rel_tol=rel_tol, timeout=timeout, decimal_comma=decimal_comma,
                allow_relations=allow_relations)
    if is_equivalent(pred, ref, **opts):
        return 1.0
    if _is_collection(ref):
        # the parts of a multi-part answer, boxed in different sentences, read together
        boxes = extract_boxes(completion)
        if boxes is not None and len(boxes) > 1 and is_equivalent(", ".join(boxes), ref, **opts):
            return 1.0
    return 0.0


def _is_collection(ref: str) -> bool:
    try:
        a = parse_answer(ref)
    except ParseError:
        return False
    return a.kind in ("bare", "set") and len(a.value) > 1
