"""Built-in problem generators, the warm-start noise, file loading and the prompt sampler."""

from __future__ import annotations

import json
import random

import pytest

from cast_core.verify import math_reward
from cast_torch.train import config_from_mapping
from cast_torch.train.data import PromptSampler, arithmetic_problem, load_problems, noisy_solution


@pytest.mark.parametrize("terms", [2, 3, 4])
def test_generated_solutions_are_right_and_verifiable(terms):
    rng = random.Random(terms)
    for _ in range(200):
        p = arithmetic_problem(rng, max_operand=19, num_terms=terms)
        expr = p["prompt"].rstrip("=")
        # left-to-right + and - over non-negative ints, recomputed without eval()
        tokens = expr.replace("-", " - ").replace("+", " + ").split()
        value = int(tokens[0])
        for op, num in zip(tokens[1::2], tokens[2::2]):
            value = value + int(num) if op == "+" else value - int(num)
            assert value >= 0
        assert p["answer"] == str(value)
        assert math_reward(p["solution"], p["answer"]) == 1.0
        assert p["solution"].count("\n") == (0 if terms == 2 else terms - 1)


def test_noisy_solution_skips_the_last_operation():
    p = {"prompt": "16+4-3=", "answer": "17", "solution": "16+4=20\n20-3=17\n#### 17", "partial": "20"}
    rng = random.Random(0)
    outs = [noisy_solution(p, rng, 0.5) for _ in range(400)]
    wrong = [o for o in outs if o.endswith("#### 20")]
    assert 150 < len(wrong) < 250 and all(o.endswith(("#### 17", "#### 20")) for o in outs)
    assert math_reward(wrong[0], "17") == 0.0
    assert noisy_solution(p, rng, 0.0) == p["solution"]


def test_builtin_eval_prompts_never_in_training(tmp_path):
    cfg = config_from_mapping({"data": "multistep", "num_terms": 3, "max_operand": 9, "eval_size": 30,
                               "num_problems": 300, "out": str(tmp_path)})
    train, evals = load_problems(cfg)
    assert len(train) == 300 and len(evals) == 30
    assert len({r["prompt"] for r in evals}) == 30
    assert not {r["prompt"] for r in evals} & {r["prompt"] for r in train}
    assert load_problems(cfg.replace(seed=5)) == (train, evals)   # problems do not depend on the run seed


def test_file_loading_with_custom_columns(tmp_path):
    path = tmp_path / "problems.jsonl"
    rows = [{"question": f"{i}+1=", "final": i + 1, "level": i % 3} for i in range(12)]
    rows[0]["question"] = [{"role": "user", "content": "0+1="}]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    cfg = config_from_mapping({"data": str(path), "prompt_column": "question", "answer_column": "final",
                               "eval_size": 4, "out": str(tmp_path / "o")})
    train, evals = load_problems(cfg)
    assert len(train) == 8 and len(evals) == 4
    everything = train + evals
    assert {r["answer"] for r in everything} == {str(i + 1) for i in range(12)}
    assert all("level" in r for r in everything)                    # extra columns reach the reward
    assert any(isinstance(r["prompt"], list) for r in everything)
    with pytest.raises(ValueError, match=r"line 1 has no 'prompt' column \(TrainConfig.prompt_column\)"):
        load_problems(cfg.replace(prompt_column="prompt"))
    with pytest.raises(ValueError, match="does not exist"):
        load_problems(cfg.replace(data=str(tmp_path / "nope.jsonl")))
    with pytest.raises(ValueError, match="eval_size"):
        load_problems(cfg.replace(eval_size=12))


def test_prompt_sampler_covers_epochs_and_resumes():
    s = PromptSampler(5, seed=3)
    first = s.next(5)
    assert sorted(first) == list(range(5))
    s.next(2)
    state = s.state_dict()
    rest = s.next(7)
    t = PromptSampler(5, seed=3)
    t.load_state_dict(state)
    assert t.next(7) == rest
    with pytest.raises(ValueError, match="checkpoint is for n=5"):
        PromptSampler(6, seed=3).load_state_dict(state)
