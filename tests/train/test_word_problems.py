"""The GSM8K-format word-problem generator: right answers, stated numbers, variety, a clean split."""

from __future__ import annotations

import operator
import random
import re

import pytest

from cast_core.verify import math_reward
from cast_torch.train import config_from_mapping
from cast_torch.train.data import load_problems
from cast_torch.train.word_problems import FAMILIES, INSTRUCTION, MAX_STEPS, NAMES, word_problem

_LINE = re.compile(r"^(\d+) ([-+*/]) (\d+) = (\d+)$")


_OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.floordiv}


def _apply(a: int, op: str, b: int) -> int:
    if op == "/":
        assert b > 0 and a % b == 0, f"inexact division {a} / {b}"
    return _OPS[op](a, b)


@pytest.mark.parametrize("steps", range(1, MAX_STEPS + 1))
def test_every_solution_line_is_right_and_uses_stated_numbers(steps):
    rng = random.Random(steps)
    families = set()
    for _ in range(400):
        p = word_problem(rng, max_operand=20, num_steps=steps)
        families.add(p["family"])
        lines = p["solution"].split("\n")
        assert lines[-1] == f"#### {p['answer']}" and len(lines) == steps + 1
        stated = {int(x) for x in re.findall(r"\d+", p["question"])}
        results: set[int] = set()
        value = None
        for line in lines[:-1]:
            m = _LINE.match(line)
            assert m, line
            a, op, b, c = int(m[1]), m[2], int(m[3]), int(m[4])
            assert _apply(a, op, b) == c >= 0, (p["question"], line)
            # each operand is a number the story states or an earlier result
            assert a in stated | results and b in stated | results, (p["question"], line)
            results.add(c)
            value = c
        assert p["answer"] == str(value)
        assert math_reward(p["solution"], p["answer"]) == 1.0
        assert p["prompt"] == f"{p['question']}\n\n{INSTRUCTION}"
    assert families == set(FAMILIES)


def test_varied_enough_for_a_held_out_split():
    rng = random.Random(0)
    problems = [word_problem(rng, max_operand=20, num_steps=1) for _ in range(2000)]
    questions = [p["question"] for p in problems]
    assert len(set(questions)) > 1900
    names = {n for n, _ in NAMES if any(q.startswith(n) or f" {n} " in q for q in questions)}
    assert len(names) >= 30
    # the templates differ, not just the numbers: strip digits and names and count skeletons
    skeletons = {re.sub(r"\d+", "N", q) for q in questions}
    for n, _ in NAMES:
        skeletons = {s.replace(n, "X") for s in skeletons}
    assert len(skeletons) > 200


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="num_steps"):
        word_problem(random.Random(0), num_steps=MAX_STEPS + 1)
    with pytest.raises(ValueError, match="max_operand"):
        word_problem(random.Random(0), max_operand=1)
    with pytest.raises(ValueError, match="num_terms"):
        config_from_mapping({"data": "word-problems", "num_terms": MAX_STEPS + 2})


def test_builtin_split_is_disjoint_and_independent_of_the_run_seed(tmp_path):
    cfg = config_from_mapping({"data": "word-problems", "num_terms": 2, "max_operand": 12, "eval_size": 50,
                               "num_problems": 400, "out": str(tmp_path)})
    train, evals = load_problems(cfg)
    assert len(train) == 400 and len(evals) == 50 == len({r["prompt"] for r in evals})
    assert not {r["prompt"] for r in evals} & {r["prompt"] for r in train}
    assert load_problems(cfg.replace(seed=3)) == (train, evals)
    assert all(len(r["solution"].split("\n")) == 2 for r in train)   # one operation each


def test_families_can_be_chosen_and_are_checked(tmp_path):
    cfg = config_from_mapping({"data": "word-problems", "num_terms": 3, "eval_size": 10, "num_problems": 60,
                               "word_problem_families": "days-total, running-count", "out": str(tmp_path)})
    train, evals = load_problems(cfg)
    assert {r["family"] for r in train + evals} == {"days-total", "running-count"}
    with pytest.raises(ValueError, match="TrainConfig.word_problem_families: unknown .*'nope'"):
        cfg.replace(word_problem_families="shopping,nope")
