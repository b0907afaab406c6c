"""Find the final answer in a model completion (`extract_answer`, `extract_choice`).

Strategies (names in `STRATEGIES`):

- ``"boxed"``: a ``\\boxed{..}`` / ``\\fbox{..}`` (nested braces matched; also
  ``\\boxed 5``). Boxes less than 10 characters apart, or less than 70 apart with a
  connector between them (``,`` ``;`` "and" "or", as in ``\\quad \\text{and} \\quad``),
  form one *box group* (identical neighbours merged), read as one answer:
  ``\\boxed{1}, \\boxed{2}`` is the list "1, 2". Boxes separated by prose are separate
  answers (the last one wins).
- ``"answer_is"``: the answer sentence after "the answer is", "final answer ... is"
  (up to 100 characters between), "Answer:", or "Answer" followed by a math span: a
  leading math span, else the sentence when it is an answer, else the one number or
  math span it contains. A sentence with several of them ("either 3 or 5") or a
  negation ("is not 5") is a hedge: it gives no answer, and the plain-number fallback
  is then not used.
- ``"gsm8k"``: the text after a GSM8K-style ``####`` (to the end of the line).
- ``"math_env"``: a math span ``$..$`` ``\\(..\\)`` (one line), ``$$..$$`` ``\\[..\\]``
  whose content parses as an answer; spans joined by a connector (``$x=2$ or $x=3$``)
  are one answer, as boxes are.
- ``"last_number"``: a number standing alone in plain text: outside math spans, not
  part of a word (``AZYUK2A``) or of an expression (``x^2``, ``\\frac{1}{2}``, ``10 - 3``);
  thousands separators, decimals, ``a/b``, a trailing ``%`` or unit word allowed.

The first three are *answer markers*: the marker that starts last wins. Without one, the
last math span or plain number wins. An answer over `MAX_ANSWER_CHARS`, or a box nested
deeper than `MAX_DEPTH`, is rejected: the completion has **no** answer (it does not fall
through to another strategy).

Only the last `MAX_TEXT_CHARS` characters are scanned, so cost is bounded whatever the
completion length; every scan is linear (``str.find`` and simple regexes with bounded
repetition).
"""

from __future__ import annotations

import re
from typing import Iterable

from .braces import TOO_DEEP, match_braces
from .limits import MAX_ANSWER_CHARS, MAX_TEXT_CHARS
from .parse import ParseError
from .structure import parse_answer

__all__ = ["extract_answer", "extract_boxes", "extract_choice", "STRATEGIES",
           "DEFAULT_STRATEGIES", "MARKERS"]

STRATEGIES = ("boxed", "answer_is", "gsm8k", "math_env", "last_number")
DEFAULT_STRATEGIES = STRATEGIES
MARKERS = ("boxed", "answer_is", "gsm8k")

_REJECT = object()  # a cap rejected the answer: the completion has none
_HEDGE = object()   # an answer sentence without one answer: no fallback to plain numbers


class _Weak(str):
    """A short text answer from an answer sentence ("the answer is yes"): used only when
    no other answer marker gives an answer ("the answer is correct" after a box)."""
_BOX_CMD = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])")
_MAX_GROUP_GAP = 70
_ADJACENT_GAP = 10
_GAP_NOISE = re.compile(r"\\[()\[\]]|\$|\\q?quad|\\(?:text|mbox|textrm|mathrm)\s*\{|[{}]|\\[,;:! ]|~|\s")
_PROSE_BREAK = re.compile(r"[.!?]\s+[A-Z]|\n\s*\n")
_GAP_CONNECTOR = re.compile(r"\b(?:and|or)\b|[,;]", re.IGNORECASE)
_MAX_PHRASES = 8  # the last answer phrases; earlier ones matter only if these all fail
_ANSWER_WORD = re.compile(r"\banswer\b", re.IGNORECASE)
_FINAL_BEFORE = re.compile(r"final\s*\**\s*$", re.IGNORECASE)
_FINAL_IS = re.compile(r"(?:[^\n.]|\.(?=\d)){0,100}?\bis\b\s*:?", re.IGNORECASE)
_ANSWER_IS = re.compile(r"\**\s*(?:is\b|:|=)\s*:?", re.IGNORECASE)
_ANSWER_ENV = re.compile(r"[\s:*]{0,5}(?=\$|\\\(|\\\[)")
_SPAN_GAP = re.compile(r"\s*(?:,|;|,?\s*\b(?:and|or)\b)\s*", re.IGNORECASE)
_SENTENCE_END = re.compile(r"\n|\.(?:\s|$)|\bI hope\b|<\|")
_NUMBER = re.compile(r"""
    (?:^|(?<=[\s(\[=:;$€£¥*"'~\x01]))
    (?P<num>
      \\[dtc]?frac\{-?\d+\}\{\d+\}
    | [-+−]?
      (?: \d{1,3}(?:,\d{3})+(?:\.\d+)?
        | \d+,\d{1,2}(?![\d,])
        | \d+(?:\.\d+)?
        | \.\d+ )
      (?:\s*/\s*\d+(?:\.\d+)?)?
      (?:\s*(?:%|percent\b|pct\b))?
    )""", re.VERBOSE)
_MASK = "\x01"  # stands for masked math spans: a boundary, but not a space
_UNIT_LETTERS = frozenset("mgshlLKAVWJNCFt")
_CHOICE_ANSWER = re.compile(r"\(?([A-Ja-j])\)?(?:[.:)]|\s|$)")
_CHOICE_LEAD = re.compile(r"\s*(?:\*\*)?(?:\(([A-J])\)|([A-J])(?=[.:)]|\*\*|\s*$))")
_NOT_AFTER_ARTICLE = frozenset({"or", "and", "is", "was", "seems", "would", "could", "should",
                                "might", "must", "can", "because", "since", "fits"})
_CHOICE_WORD = re.compile(r"(?<![\w(])\(?([A-J])\)?(?![\w(])")


# -- math spans ------------------------------------------------------------------------

_DELIMS = re.compile(r"\\\$|\\[()\[\]]|\$\$|\$")
_CLOSER = {"\\(": "\\)", "\\[": "\\]", "$$": "$$", "$": "$"}


def _math_spans(text: str) -> list[tuple[int, int, str, bool]]:
    """(start, end, content, valid) of every math span, left to right. Inline spans
    (``$..$``, ``\\(..\\)``) are valid on one line only; a span broken across lines is
    still masked from plain text (its numbers are not plain text) but is no answer.
    Linear: one regex pass over the delimiters, each closer searched at most once."""
    toks = [(m.start(), m.group(0)) for m in _DELIMS.finditer(text) if m.group(0) != "\\$"]
    spans = []
    missing: set[str] = set()
    k, n = 0, len(toks)
    while k < n:
        start, tok = toks[k]
        close = _CLOSER.get(tok)
        if close is None or close in missing:
            k += 1
            continue
        j = k + 1
        while j < n and toks[j][1] != close:
            j += 1
        if j == n:
            missing.add(close)
            k += 1
            continue
        end = toks[j][0] + len(close)
        content = text[start + len(tok):toks[j][0]]
        spans.append((start, end, content, tok in ("$$", "\\[") or "\n" not in content))
        k = j + 1
    return spans


# -- boxes -------------------------------------------------------------------------------

def _box_content(text: str, i: int):
    """Content of the box whose command ends at ``text[i]``: (content, end) or _REJECT."""
    while i < len(text) and text[i] == " ":
        i += 1
    if i < len(text) and text[i] == "{":
        close = match_braces(text, i)
        if close == TOO_DEEP:
            return _REJECT
        if close is None:  # unclosed: the rest of the text
            return text[i + 1:].strip(), len(text)
        return text[i + 1:close].strip(), close + 1
    m = re.match(r"[^\s$]+", text[i:i + MAX_ANSWER_CHARS + 1])
    return (m.group(0), i + m.end()) if m else ("", i)


def _boxes(text: str) -> list[tuple[int, int, object]]:
    """(start, end, content or _REJECT) of every outermost box, left to right."""
    out = []
    pos = 0
    while True:
        m = _BOX_CMD.search(text, pos)
        if m is None:
            return out
        got = _box_content(text, m.end())
        if got is _REJECT:
            out.append((m.start(), len(text), _REJECT))
            return out
        content, end = got
        out.append((m.start(), end, content))
        pos = max(end, m.end())


def _joins(gap: str) -> bool:
    """Whether two boxes separated by ``gap`` belong to one box group."""
    if len(gap) > _MAX_GROUP_GAP:
        return False
    if len(gap) < _ADJACENT_GAP:
        return True
    if _PROSE_BREAK.search(gap):
        return False  # a new sentence or paragraph: the boxes are separate answers
    cleaned = _GAP_NOISE.sub("", gap)
    if not cleaned or set(cleaned) <= set(",;.:&"):
        return True
    return bool(_GAP_CONNECTOR.search(gap))


def _box_groups(text: str) -> list[tuple[int, object]]:
    """(start, answer or _REJECT) of every box group."""
    boxes = _boxes(text)
    groups, k = [], len(boxes) - 1
    while k >= 0:
        j = k
        while j > 0 and boxes[j - 1][2] is not _REJECT and boxes[j][2] is not _REJECT \
                and _joins(text[boxes[j - 1][1]:boxes[j][0]]):
            j -= 1
        contents = [b[2] for b in boxes[j:k + 1]]
        if any(c is _REJECT for c in contents):
            groups.append((boxes[j][0], _REJECT))
        else:
            merged = []
            for c in contents:
                if c and (not merged or merged[-1] != c):
                    merged.append(c)
            groups.append((boxes[j][0], ", ".join(merged)))
        k = j - 1
    return groups


# -- answer sentences -------------------------------------------------------------------

def _is_answer(s: str) -> bool:
    """Whether ``s`` parses as a math answer (not just text)."""
    try:
        return parse_answer(s).kind != "text"
    except ParseError:
        return False


def _inner_answers(s: str) -> list[str]:
    found = [content.strip() for _, _, content, valid in _math_spans(s) if valid and content.strip()]
    found += [m.group("num") for m in _plain_numbers(_mask(s, _math_spans(s)))]
    return list(dict.fromkeys(found))


def _sentence_answer(rest: str, boxes_on: bool):
    """The answer a sentence after an answer phrase gives: a string, None (no answer
    here), `_REJECT` (over a cap) or `_HEDGE` (several candidates, or a negation)."""
    rest = rest.lstrip(" \t*:")
    if rest.startswith("\n"):  # "The final answer is:\n\n$$18$$"
        rest = rest.lstrip(" \t\n*:")
    if rest[:4].lower() == "not ":
        return _HEDGE
    if _BOX_CMD.match(rest):
        if boxes_on:
            return None  # the box is its own, later, candidate
        got = _box_content(rest, _BOX_CMD.match(rest).end())
        return got if got is _REJECT else got[0]
    spans = _math_spans(rest[:MAX_ANSWER_CHARS + 4])
    if spans and spans[0][0] == 0:
        if not spans[0][3]:
            return None
        k = 0
        while k + 1 < len(spans) and spans[k + 1][3] and _SPAN_GAP.fullmatch(rest[spans[k][1]:spans[k + 1][0]]):
            k += 1
        return ", ".join(c.strip() for _, _, c, _ in spans[:k + 1])  # "$2$ or $3$": both
    m = _SENTENCE_END.search(rest, 0, MAX_ANSWER_CHARS + 1)
    sentence = rest[:m.start()] if m else rest[:MAX_ANSWER_CHARS + 1]
    sentence = sentence.strip().strip("*").strip()
    if not sentence:
        return None
    if len(sentence) > MAX_ANSWER_CHARS:
        return _REJECT
    if _is_answer(sentence):
        return sentence
    inner = _inner_answers(sentence)
    if len(inner) == 1:
        return inner[0]
    if len(inner) > 1:
        return _HEDGE  # "either 3 or 5": no single answer
    if len(sentence.split()) <= 4:
        return _Weak(sentence)  # a short text answer ("Monday", "yes")
    return None


def _answer_sentences(text: str, boxes_on: bool) -> list[tuple[int, object]]:
    out = []
    for m in list(_ANSWER_WORD.finditer(text))[-_MAX_PHRASES:]:
        p, end = m.start(), m.end()
        tries = []
        if _FINAL_BEFORE.search(text, max(0, p - 12), p):
            f = _FINAL_IS.match(text, end)
            if f:
                tries.append(f.end())
        a = _ANSWER_IS.match(text, end)
        if a:
            tries.append(a.end())
        e = _ANSWER_ENV.match(text, end)
        if e:
            tries.append(e.end())
        hedged = False
        for t in tries:
            got = _sentence_answer(text[t:t + MAX_ANSWER_CHARS + 8], boxes_on)
            if got is _HEDGE:
                hedged = True
            elif got is not None:
                out.append((p, got))
                break
        else:
            if hedged:
                out.append((p, _HEDGE))
    return out


def _gsm8k(text: str) -> list[tuple[int, object]]:
    pos = text.rfind("####")
    if pos < 0:
        return []
    rest = text[pos + 4:pos + 4 + MAX_ANSWER_CHARS + 2].lstrip("#").strip()
    line = rest.split("\n", 1)[0].strip()
    if len(line) > MAX_ANSWER_CHARS:
        return [(pos, _REJECT)]
    return [(pos, line)] if line else []


# -- unmarked answers: math spans and plain numbers ----------------------------------------

def _mask(text: str, spans) -> str:
    if not spans:
        return text
    parts, last = [], 0
    for start, end, _, _ in spans:
        parts.append(text[last:start])
        parts.append(_MASK * (end - start))
        last = end
    parts.append(text[last:])
    return "".join(parts)


def _operand(plain: str, start: int) -> bool:
    """Whether the number at ``start`` is the right operand of a binary operator."""
    k = start - 1
    while k >= 0 and plain[k] == " ":
        k -= 1
    if k < 0 or plain[k] not in "+-*/×÷^−":
        return False
    k -= 1
    while k >= 0 and plain[k] == " ":
        k -= 1
    return k >= 0 and (plain[k].isdigit() or plain[k] == ")")


def _plain_numbers(plain: str):
    """Numbers standing alone in ``plain`` (math spans already masked)."""
    for m in _NUMBER.finditer(plain):
        end = m.end()
        nxt = plain[end:end + 1]
        if nxt and (nxt in "^_{\\" or nxt.isdigit()):
            continue
        if nxt.isalpha():
            run = re.match(r"[A-Za-z]+", plain[end:end + 20])
            if run and len(run.group(0)) == 1 and run.group(0) not in _UNIT_LETTERS:
                continue  # "2x": a coefficient, not a number
        if re.match(r"\s*[-+*/^×÷]\s*[\d(]", plain[end:end + 8]):
            continue  # the left operand of an expression ("10 - 3")
        if _operand(plain, m.start("num")):
            continue
        yield m


def _unmarked(text: str, spans, names) -> str | None:
    cands: list[tuple[int, str, bool]] = []
    if "math_env" in names:
        for k in range(len(spans) - 1, max(-1, len(spans) - 9), -1):
            start, _end, content, valid = spans[k]
            if not (valid and content.strip()):
                continue
            j = k  # math spans joined by connectors ("$x=2$ or $x=3$") are one answer
            while j > 0 and spans[j - 1][3] and _SPAN_GAP.fullmatch(text[spans[j - 1][1]:spans[j][0]]):
                j -= 1
            joined = ", ".join(c.strip() for _, _, c, _ in spans[j:k + 1] if c.strip())
            if len(joined) <= MAX_ANSWER_CHARS:
                cands.append((spans[j][0], joined, True))
    if "last_number" in names:
        last = None
        for last in _plain_numbers(_mask(text, spans)):
            pass
        if last is not None:
            cands.append((last.start("num"), last.group("num"), False))
    for _, ans, needs_check in sorted(cands, key=lambda c: -c[0]):
        if not needs_check or _is_answer(ans):
            return ans
    return None


def extract_answer(text: str, *, strategies: Iterable[str] = DEFAULT_STRATEGIES) -> str | None:
    """The final answer of a completion, as a string, or None when it has none.

    Args:
        text: the completion (untrusted). Only its last `MAX_TEXT_CHARS` characters are
            read.
        strategies: names from `STRATEGIES` to use (see the module docstring); among
            the answer markers the one that starts last wins, then math spans and plain
            numbers.

    Returns:
        The answer text (stripped, at most `MAX_ANSWER_CHARS` characters; a box group
        joined with ", "), or None (also when a cap rejects the chosen answer).

    Raises:
        TypeError: ``text`` is not a str. ValueError: an unknown strategy name.
    """
    if not isinstance(text, str):
        raise TypeError(f"text: expected str, got {type(text).__name__}")
    names = tuple(strategies) if not isinstance(strategies, str) else (strategies,)
    for name in names:
        if name not in STRATEGIES:
            raise ValueError(f"strategies: unknown strategy {name!r}; choose from {STRATEGIES}")
    if not names:
        raise ValueError("strategies: empty; choose from " + repr(STRATEGIES))
    tail = text[-MAX_TEXT_CHARS:]
    marked: list[tuple[int, object]] = []
    if "boxed" in names:
        marked += _box_groups(tail)
    if "answer_is" in names:
        marked += _answer_sentences(tail, "boxed" in names)
    if "gsm8k" in names:
        marked += _gsm8k(tail)
    hedged = False
    ranked = sorted(marked, key=lambda c: (not isinstance(c[1], _Weak), c[0]), reverse=True)
    for _, found in ranked:
        if found is _REJECT:
            return None
        if found is _HEDGE:
            hedged = True
            continue
        found = found.strip()
        if found:
            return found if len(found) <= MAX_ANSWER_CHARS else None
    if hedged:
        return None  # "the answer is either 3 or 5": not rescued by the last number
    if "math_env" in names or "last_number" in names:
        found = _unmarked(tail, _math_spans(tail), names)
        if found:
            return found
    return None


def extract_boxes(text: str) -> list[str] | None:
    """The distinct contents of every box in the completion, in order (identical ones
    once); None when a cap rejects one. Read when the reference is a collection: the
    parts of a multi-part answer may be boxed in different sentences."""
    if not isinstance(text, str):
        raise TypeError(f"text: expected str, got {type(text).__name__}")
    out: list[str] = []
    for _, _, content in _boxes(text[-MAX_TEXT_CHARS:]):
        if content is _REJECT or len(content) > MAX_ANSWER_CHARS:
            return None
        if content and content not in out:
            out.append(content)
    return out


def extract_choice(text: str, letters: str = "ABCDEFGHIJ") -> str | None:
    """The multiple-choice letter a completion picks, or None.

    In order: the extracted answer (`extract_answer`) when it starts with a letter
    (``(B)``, ``B) 12``); a letter opening the completion (``A. Because ...``); else the
    one option letter standing alone in the text (``Because B is valid``) when exactly
    one distinct letter does (the article "A" before a lowercase word and the pronoun
    "I" do not count). Several different letters: None (a hedge picks nothing).
    """
    if not isinstance(text, str):
        raise TypeError(f"text: expected str, got {type(text).__name__}")
    tail = text[-MAX_TEXT_CHARS:]
    found = extract_answer(tail, strategies=MARKERS)
    if found is not None:
        m = _CHOICE_ANSWER.match(re.sub(r"\\text(?:bf)?\{([^{}]*)\}", r"\1", found).replace("$", ""))
        if m and m.group(1).upper() in letters:
            return m.group(1).upper()
        return None
    m = _CHOICE_LEAD.match(tail)
    if m and (m.group(1) or m.group(2)) in letters:
        return m.group(1) or m.group(2)
    seen = []
    for w in _CHOICE_WORD.finditer(tail):
        ch = w.group(1)
        if ch not in letters or ch == "I":
            continue
        if ch == "A":
            nxt = re.match(r" ([a-z]+)", tail[w.end():w.end() + 20])
            if nxt and nxt.group(1) not in _NOT_AFTER_ARTICLE:
                continue  # the article: "A cat is ..."
        if ch not in seen:
            seen.append(ch)
    return seen[0] if len(seen) == 1 else None
