"""A built-in generator of GSM8K-format word problems (``data = "word-problems"``).

Each problem is a short story about a person and a count of things, with a reference
answer and a worked solution in GSM8K's format (one line per operation, then
``#### <answer>``). Problems combine:

- four story families (a running count changed by events, a total over days, buying at
  a price with change, a comparison between two people),
- the four operations (+, −, ×, and exact ÷: sharing equally),
- 40 names (with pronouns), 24 kinds of things with their containers, and units
  (pages, km, minutes, dollars), with several phrasings of every event and question,

so a held-out split of a few hundred problems shares almost no surface text with
training. ``num_steps`` (1–3) is the number of operations: the difficulty knob. All
intermediate values are non-negative integers, divisions are exact.

The prompt is the story, the question and :data:`INSTRUCTION` (answer after ``####`` or in
``\\boxed{}``), the format :func:`cast_core.verify.math_reward` reads. Generation is pure
Python on a ``random.Random`` (deterministic per seed); nothing is downloaded.
"""

from __future__ import annotations

import random
from typing import Callable, Sequence

__all__ = ["word_problem", "check_families", "INSTRUCTION", "NAMES", "THINGS", "FAMILIES", "MAX_STEPS"]

# Measured on SmolLM2-135M-Instruct (docs/trainer.md): asking for a step-by-step answer gave
# 90-100-token rambles, 40-50% cut at 128 tokens, and lower accuracy; a one-shot example made
# it print "#### <first number>" first; this brief form gave the best greedy and sampled accuracy
# with ~30-token completions.
INSTRUCTION = "Answer briefly: one sentence with the calculation, then the final number after ####."

MAX_STEPS = 3

# (name, subject pronoun, object pronoun, possessive)
_HE, _SHE = ("he", "him", "his"), ("she", "her", "her")
NAMES: tuple[tuple[str, tuple[str, str, str]], ...] = tuple(
    [(n, _SHE) for n in ("Anna", "Maria", "Lena", "Sofia", "Emma", "Priya", "Chloe", "Yuki", "Fatima", "Grace",
                         "Olivia", "Mei", "Sara", "Nora", "Ines", "Hana", "Lucy", "Amara", "Zoe", "Elena")]
    + [(n, _HE) for n in ("Tom", "Ben", "Omar", "Liam", "Kenji", "Carlos", "David", "Leo", "Ravi", "Sam",
                          "Jonas", "Mateo", "Noah", "Ali", "Felix", "Hugo", "Ivan", "Kofi", "Marco", "Yusuf")])

# (plural, singular, container plural)
THINGS: tuple[tuple[str, str, str], ...] = (
    ("apples", "apple", "baskets"), ("marbles", "marble", "jars"), ("stickers", "sticker", "sheets"),
    ("pencils", "pencil", "boxes"), ("cookies", "cookie", "trays"), ("books", "book", "shelves"),
    ("cards", "card", "packs"), ("eggs", "egg", "cartons"), ("flowers", "flower", "vases"),
    ("shells", "shell", "buckets"), ("coins", "coin", "purses"), ("balloons", "balloon", "bags"),
    ("crayons", "crayon", "boxes"), ("oranges", "orange", "crates"), ("beads", "bead", "strings"),
    ("cupcakes", "cupcake", "boxes"), ("stamps", "stamp", "albums"), ("toy cars", "toy car", "boxes"),
    ("candies", "candy", "bags"), ("buttons", "button", "tins"), ("plums", "plum", "bowls"),
    ("rocks", "rock", "buckets"), ("tickets", "ticket", "envelopes"), ("muffins", "muffin", "trays"),
)

# (unit, verb in the past tense, what is measured)
_DAY_UNITS = (("pages", "read", "pages"), ("km", "ran", "kilometres"), ("minutes", "practised the piano for",
              "minutes"), ("dollars", "saved", "dollars"), ("km", "cycled", "kilometres"), ("laps", "swam", "laps"))
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_SHOP_ITEMS = ("notebook", "sandwich", "toy", "pen", "ticket", "cake", "ball", "hat", "kite", "mug")


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _count(n: int, plural: str, singular: str) -> str:
    """``"1 apple"`` / ``"3 apples"``."""
    return f"{n} {singular if n == 1 else plural}"


_SINGULAR = {"pages": "page", "km": "km", "minutes": "minute", "dollars": "dollar", "laps": "lap"}


class _Story:
    """Accumulates sentences and solution lines while tracking the running value."""

    def __init__(self, rng: random.Random, max_operand: int) -> None:
        self.rng, self.hi = rng, max(2, max_operand)
        self.sentences: list[str] = []
        self.lines: list[str] = []

    def num(self, lo: int = 1, hi: int | None = None) -> int:
        return self.rng.randint(lo, max(lo, self.hi if hi is None else hi))

    def line(self, a: int, op: str, b: int, c: int) -> int:
        self.lines.append(f"{a} {op} {b} = {c}")
        return c


def _two_people(rng: random.Random) -> tuple[tuple[str, tuple[str, str, str]], tuple[str, tuple[str, str, str]]]:
    a, b = rng.sample(NAMES, 2)
    return a, b


def _running_count(rng: random.Random, max_operand: int, steps: int) -> tuple[str, list[str], int]:
    """A person's count changed by events; optional groups start (×) and sharing end (÷)."""
    st = _Story(rng, max_operand)
    (name, (he, him, his)), (friend, _) = _two_people(rng)
    things, thing, boxes = rng.choice(THINGS)
    ops_left = steps
    # start: a plain count, or (uses one operation) groups of equal size
    if ops_left >= 1 and rng.random() < 0.3:
        k, m = st.num(2, min(9, st.hi)), st.num(2, min(12, st.hi))
        value = st.line(k, "*", m, k * m)
        st.sentences.append(rng.choice((
            f"{name} has {k} {boxes} of {things} with {m} {things} in each.",
            f"{name} buys {k} {boxes} of {things}. Each one holds {m} {things}.",
        )))
        ops_left -= 1
    else:
        value = st.num(2)
        st.sentences.append(rng.choice((
            f"{name} has {value} {things}.", f"{name} collected {value} {things}.",
            f"There are {value} {things} in {name}'s room.", f"{name} starts the day with {value} {things}.",
        )))
    # optional sharing at the end (uses one operation; needs an exact divisor)
    share = ops_left >= 1 and rng.random() < 0.3
    events = ops_left - int(share)
    for _ in range(events):
        if value >= 2 and rng.random() < 0.5:
            b = st.num(1, min(value, st.hi))
            value = st.line(value, "-", b, value - b)
            st.sentences.append(rng.choice((
                f"{_cap(he)} gives {_count(b, things, thing)} to {friend}.", f"{_cap(he)} loses {b} of them.",
                f"{_cap(he)} sells {_count(b, things, thing)}.", f"{friend} takes {b} of {his} {things}.",
                f"{_cap(he)} uses {_count(b, things, thing)} for a school project.",
            )))
        else:
            b = st.num(1)
            value = st.line(value, "+", b, value + b)
            st.sentences.append(rng.choice((
                f"{_cap(he)} buys {b} more {things if b > 1 else thing}.",
                f"{friend} gives {him} {b} more {things if b > 1 else thing}.",
                f"{_cap(he)} finds {b} more.", f"Then {he} gets {_count(b, things, thing)} as a present.",
                f"{_cap(he)} wins {_count(b, things, thing)} in a game.",
            )))
    if share:
        divisors = [d for d in range(2, 10) if value % d == 0 and value // d >= 1]
        if divisors:
            d = rng.choice(divisors)
            st.sentences.append(f"{_cap(he)} shares all of {his} {things} equally among {d} friends.")
            value = st.line(value, "/", d, value // d)
            question = rng.choice((f"How many {things} does each friend get?",
                                   f"How many {things} does every friend receive?"))
            return " ".join(st.sentences) + " " + question, st.lines, value
        # no exact divisor: one more event instead, so the step count is kept
        b = st.num(1)
        value = st.line(value, "+", b, value + b)
        st.sentences.append(f"{_cap(he)} buys {b} more {things if b > 1 else thing}.")
    question = rng.choice((f"How many {things} does {name} have now?", f"How many {things} does {name} have in the end?",
                           f"How many {things} does {name} have left?" if "-" in " ".join(st.lines)
                           else f"How many {things} does {name} have altogether?"))
    return " ".join(st.sentences) + " " + question, st.lines, value


def _days_total(rng: random.Random, max_operand: int, steps: int) -> tuple[str, list[str], int]:
    """An amount over consecutive days: a sum of steps + 1 numbers."""
    st = _Story(rng, max_operand)
    (name, (he, _, _)), _ = _two_people(rng)
    unit, verb, measured = rng.choice(_DAY_UNITS)
    start = rng.randrange(0, len(_DAYS) - steps)
    days = _DAYS[start:start + steps + 1]
    amounts = [st.num(1) for _ in days]
    parts = [f"{_count(a, unit, _SINGULAR[unit])} on {d}" for a, d in zip(amounts, days)]
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    value = amounts[0]
    for a in amounts[1:]:
        value = st.line(value, "+", a, value + a)
    question = rng.choice((f"How many {measured} did {he} {_present(verb)} in total?",
                           f"How many {unit} is that altogether?"))
    return f"{name} {verb} {listed}. {question}", st.lines, value


def _present(verb: str) -> str:
    return {"read": "read", "ran": "run", "practised the piano for": "practise the piano", "saved": "save",
            "cycled": "cycle", "swam": "swim"}[verb]


def _shopping(rng: random.Random, max_operand: int, steps: int) -> tuple[str, list[str], int]:
    """Buying n items at a price (×), then more items (+) or paying with a bill (−)."""
    st = _Story(rng, max_operand)
    (name, (he, _, _)), _ = _two_people(rng)
    item = rng.choice(_SHOP_ITEMS)
    price, n = st.num(1, min(12, st.hi)), st.num(2, min(9, st.hi))
    value = st.line(n, "*", price, n * price)
    text = f"A {item} costs {_count(price, 'dollars', 'dollar')}. {name} buys {n} of them."
    question = "How many dollars does " + he + " spend?"
    if steps >= 2:
        other = rng.choice([i for i in _SHOP_ITEMS if i != item])
        cost = st.num(1, min(20, st.hi))
        value = st.line(value, "+", cost, value + cost)
        text += f" {_cap(he)} also buys a {other} for {_count(cost, 'dollars', 'dollar')}."
        question = f"How many dollars does {he} spend in total?"
    if steps >= 3:
        bill = next(b for b in (10, 20, 50, 100, 200, 500, 1000) if b >= value)
        value = st.line(bill, "-", value, bill - value)
        text += f" {_cap(he)} pays with a {bill}-dollar bill."
        question = "How many dollars of change does " + he + " get?"
    return f"{text} {question}", st.lines, value


def _comparison(rng: random.Random, max_operand: int, steps: int) -> tuple[str, list[str], int]:
    """Two people: one has more/fewer/times as many as the other; ask one count or the total."""
    st = _Story(rng, max_operand)
    (a_name, _), (b_name, _) = _two_people(rng)
    things, thing, _ = rng.choice(THINGS)
    a = st.num(2)
    kind = rng.choice(("more", "fewer", "times"))
    if kind == "more":
        d = st.num(1)
        b = st.line(a, "+", d, a + d)
        rel = f"{b_name} has {d} more {things if d > 1 else thing} than {a_name}."
    elif kind == "fewer":
        d = st.num(1, a - 1)
        b = st.line(a, "-", d, a - d)
        rel = f"{b_name} has {d} fewer {things if d > 1 else thing} than {a_name}."
    else:
        k = st.num(2, min(5, st.hi))
        b = st.line(a, "*", k, a * k)
        rel = f"{b_name} has {k} times as many {things} as {a_name}."
    text = f"{a_name} has {a} {things}. {rel}"
    if steps == 1:
        return f"{text} How many {things} does {b_name} have?", st.lines, b
    value = st.line(a, "+", b, a + b)
    if steps == 2:
        return f"{text} How many {things} do they have together?", st.lines, value
    c = st.num(1, value)
    value = st.line(value, "-", c, value - c)
    return (f"{text} Together they give {_count(c, things, thing)} to their teacher. How many {things} do they "
            "have left?",
            st.lines, value)


# name -> (generator, allowed step counts)
FAMILIES: dict[str, tuple[Callable[[random.Random, int, int], tuple[str, list[str], int]], tuple[int, ...]]] = {
    "running-count": (_running_count, (1, 2, 3)),
    "days-total": (_days_total, (1, 2, 3)),
    "shopping": (_shopping, (1, 2, 3)),
    "comparison": (_comparison, (1, 2, 3)),
}


def check_families(families: Sequence[str], what: str = "families") -> None:
    """``ValueError`` (naming ``what``) unless every name in ``families`` is one of :data:`FAMILIES`."""
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        raise ValueError(f"{what}: unknown word-problem families {unknown}; choose from {sorted(FAMILIES)}")


def word_problem(rng: random.Random, *, max_operand: int = 20, num_steps: int = 1,
                 families: Sequence[str] = ()) -> dict[str, str]:
    """One GSM8K-format word problem ``{"prompt", "answer", "solution", "question", "family"}``.

    Args:
        rng: the random source (``random.Random``).
        max_operand: the largest number drawn for a count or amount (prices, group sizes
            and factors stay smaller); >= 2.
        num_steps: operations needed, 1..:data:`MAX_STEPS`.
        families: draw only from these :data:`FAMILIES` (empty: all of them).

    Returns:
        ``prompt`` = question + blank line + :data:`INSTRUCTION`; ``answer`` the integer
        as a string; ``solution`` one ``a op b = c`` line per operation then ``#### answer``.
    """
    if not 1 <= num_steps <= MAX_STEPS:
        raise ValueError(f"num_steps: must be 1..{MAX_STEPS}, got {num_steps!r}")
    if max_operand < 2:
        raise ValueError(f"max_operand: word problems need max_operand >= 2, got {max_operand!r}")
    check_families(families)
    family = rng.choice(sorted(families or FAMILIES))
    gen, _ = FAMILIES[family]
    question, lines, value = gen(rng, max_operand, num_steps)
    assert len(lines) == num_steps and value >= 0, (family, lines)
    return {"prompt": f"{question}\n\n{INSTRUCTION}", "answer": str(value),
            "solution": "\n".join(lines) + f"\n#### {value}", "question": question, "family": family}
