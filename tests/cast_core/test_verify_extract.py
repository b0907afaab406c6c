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


@pytest.mark.parametrize("text,expected", [
    # box groups: adjacent boxes, or boxes joined by a connector, are one answer
    ("\\boxed{1}, \\boxed{2}", "1, 2"),
    ("$\\boxed{-2} \\quad \\text{and} \\quad \\boxed{1}$", "-2, 1"),
    ("\\boxed{(3, 3)} \\text{ for part (a) and } \\boxed{(1, 1)}", "(3, 3), (1, 1)"),
    ("\\boxed{4}\n\n**Final Answer**\n\\boxed{4}", "4"),
    ("\\boxed{1} no no no no no \\boxed{2}", "2"),
    ("\\boxed{1}. Then, checking the second case carefully, \\boxed{2}", "2"),  # prose
    # answer sentences
    ("Final Answer: The largest $n$ is 34.", "34"),
    ("Final Answer: Jane started 3 hours ago. I hope it is correct.", "3"),
    ("Final Answer: The final answer is $28 \\%$. I hope it is correct.", "28 \\%"),
    ("Answer \\( (9+1) \\)", "(9+1)"),
    ("**Answer:** 42", "42"),
    ("\\boxed{7}. I checked that the answer is correct.", "7"),
    ("The answer is Monday.", "Monday"),
    ("... \\boxed{255} ... Final Answer: The final answer is $10,455$. I hope it is correct.", "10,455"),
    # math spans and plain numbers
    ("so the pair is $(7, 6)$. <|im_start|>user", "(7, 6)"),
    ("Therefore $x \\geq 5$ is the solution.", "x \\geq 5"),
    ("so $x = 2$ or $x = 3$.", "x = 2, x = 3"),
    ("the value is 1,000.99m\u00b2", "1,000.99"),
    ("He has $5 and gets $3 more, so 8 in all.", "8"),
    # nothing standing alone: no answer
    ("Answer $ \n 9 \n $", None),
    ("Answer \\( \n 9 \n \\)", None),
    ("AZYUK2A", None),
    ("x^2 and 2^{10}", None),
    ("The result is 10 - 3", None),
    ("The answer is either 3 or 5.", None),
    ("The answer is not 5.", None),
    ("No valid answer here", None),
])
def test_extract_rules(text, expected):
    assert extract_answer(text) == expected


def test_extract_boxes_and_choice():
    from cast_core.verify import extract_choice
    from cast_core.verify.extract import extract_boxes
    assert extract_boxes("a \\boxed{1} b \\boxed{2} c \\boxed{1}") == ["1", "2"]
    assert extract_boxes("\\boxed{" + "{" * 60 + "}" * 60 + "}") is None
    assert extract_choice("The answer is (B).") == "B"
    assert extract_choice("A. Because B is not valid") == "A"
    assert extract_choice("Because B is valid") == "B"
    assert extract_choice("A cat is not an option; C is.") == "C"
    assert extract_choice("It could be A or B.") is None
    assert extract_choice("I think so") is None
    assert extract_choice("\\boxed{12}") is None
    with pytest.raises(TypeError, match="text"):
        extract_choice(None)
