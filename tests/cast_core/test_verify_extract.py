"""extract_answer and math_reward."""

from __future__ import annotations

import pytest

from cast_core.verify import extract_answer, math_reward, reference_answer


@pytest.mark.parametrize("text,expected", [
    ("so the result is \\boxed{42}.", "42"),
    ("first \\boxed{1} then \\boxed{2}", "1, 2"),  # adjacent boxes: one answer
    ("\\boxed{1}. Wait, that is wrong. Redoing it gives \\boxed{2}", "2"),
    ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
    ("nested \\boxed{\\frac{\\sqrt{3}}{\\left\\{2\\right\\}}} end", "\\frac{\\sqrt{3}}{\\left\\{2\\right\\}}"),
    ("\\fbox{7}", "7"),
    ("\\boxed 5 is it", "5"),
    ("$\\boxed{x^{2}}$", "x^{2}"),
    ("The answer is 17.", "17"),
    ("Thus, the final answer is: 3.5. Done", "3.5"),
    ("the answer is $\\frac{3}{4}$\nmore text", "\\frac{3}{4}"),
    ("Natalia sold 48 clips.\n#### 72", "72"),
    ("#### 1,234", "1,234"),
    ("we get 3 apples and then 7.5 pears", "7.5"),
    ("total: -12 degrees", "-12"),
    ("it costs $1,250.50 overall", "1,250.50"),
    ("ratio 3/4 overall", "3/4"),
    ("no numbers here", None),
    ("", None),
    ("unclosed \\boxed{12", "12"),
])
def test_extract(text, expected):
    assert extract_answer(text) == expected


def test_boxed_wins_over_later_number():
    assert extract_answer("\\boxed{5} and then 6 more words 7") == "5"


def test_strategy_is_configurable():
    text = "the answer is 3. \\boxed{4} #### 5 and 6"
    assert extract_answer(text) == "5 and 6"  # the answer marker that starts last wins
    assert extract_answer(text, strategies=("answer_is",)) == "3"
    assert extract_answer(text, strategies=("boxed",)) == "4"
    assert extract_answer(text, strategies=("gsm8k",)) == "5 and 6"
    assert extract_answer(text, strategies=("last_number",)) == "6"
    assert extract_answer("\\boxed{4}", strategies=("gsm8k",)) is None


def test_extract_errors():
    with pytest.raises(TypeError, match="text"):
        extract_answer(b"\\boxed{1}")
    with pytest.raises(ValueError, match="unknown strategy 'boxd'"):
        extract_answer("1", strategies=("boxd",))
    with pytest.raises(ValueError, match="empty"):
        extract_answer("1", strategies=())


def test_only_the_tail_is_scanned():
    big = "\\boxed{1}" + "x" * 2_000_000 + " the answer is 9"
    assert extract_answer(big) == "9"


@pytest.mark.parametrize("completion,answer,reward", [
    ("... so \\boxed{\\frac{1}{2}}", "0.5", 1.0),
    ("... so \\boxed{\\frac{1}{3}}", "0.5", 0.0),
    ("reasoning\n#### 1,000", "1000", 1.0),
    ("The answer is 72.", "Natalia sold 48/2 = 24 clips.\n#### 72", 1.0),
    ("x is \\boxed{2x+1}", "The solution gives $\\boxed{1+2x}$.", 1.0),
    ("I do not know", "5", 0.0),
    ("", "5", 0.0),
    ("\\boxed{5}", "", 0.0),
    ("\\boxed{(B)}", "B", 1.0),
])
def test_math_reward(completion, answer, reward):
    out = math_reward(completion, answer)
    assert out == reward and isinstance(out, float)


def test_math_reward_types():
    with pytest.raises(TypeError, match="completion"):
        math_reward(None, "1")
    with pytest.raises(TypeError, match="answer"):
        math_reward("1", 1)
    assert reference_answer("  7 ") == "7"
    assert reference_answer("blah \\boxed{8} blah") == "8"
