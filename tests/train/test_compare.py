"""The method comparison: arguments, grid files, the runner's checks, the privileged-teacher
statistics, and (slow) one tiny end-to-end comparison. The summary and report are tested
in test_compare_report.py."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from cast_core import CASTConfig
from cast_torch.train import compare
from cast_torch.train.analysis import PrivilegedDiagnosticsTrainer, privileged_metrics, seq_gap_auc
from cast_torch.train.compare import Arm, grid_from_mapping, load_grid, load_runs, main, parse_args

REPO = Path(__file__).resolve().parents[2]


# -- arguments -------------------------------------------------------------------------------
def test_bad_method_is_a_clear_value_error():
    with pytest.raises(ValueError, match=r"--methods: unknown method 'ppo'.*grpo"):
        parse_args(["--methods", "grpo,ppo"])


def test_main_reports_bad_method_and_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--quick", "--methods", "cast,foo"])
    assert exc.value.code == 2
    assert "unknown method 'foo'" in capsys.readouterr().err


@pytest.mark.parametrize("argv, pattern", [
    (["--presets", "nope"], r"--presets: unknown preset 'nope'"),
    (["--presets", "cast-paper"], r"'cast-paper' is not in grid 'tiny-full'"),
    (["--seeds", "0,x"], r"--seeds: 'x' is not an integer"),
    (["--seeds", "0,-1"], r"--seeds: -1 is negative"),
    (["--seeds", "1,1"], r"--seeds: duplicate"),
    (["--methods", ""], r"--methods: empty list"),
    (["--set", "lr"], r"--set: expected KEY=VALUE"),
    (["--set", "learning_rate=1"], r"unknown TrainConfig setting 'learning_rate'"),
    (["--set", "method=cast"], r"'method' is set by the comparison"),
    (["--set", "teacher_context={prompt} {answer}"], r"'teacher_context' is read by only some methods"),
    (["--set", "cast.lam=0.3"], r"'cast.lam' is read by only some methods"),
    (["--set", "cast.deadband=[1.0, 1.0]"], r"'cast.deadband' is read by only some methods"),
    (["--set", "teacher_refresh_steps=50"], r"'teacher_refresh_steps' is read by only some methods"),
    (["--set", "zvp_alpha=0.3"], r"does not tune one method alone"),
    (["--jobs", "0"], r"--jobs: must be >= 1"),
    (["--quick", "--mode", "full"], r"--quick conflicts"),
    (["--grid", "tiny-full", "--quick"], r"--grid tiny-full conflicts with --quick"),
    (["--grid", "nope"], r"--grid: no grid 'nope' in configs/experiments/ \(known: .*tiny-quick"),
    (["--privileged-template", "{prompt}"], r"needs both \{prompt\} and \{answer\}"),
    (["--report-only", "--quick"], r"--report-only re-renders .* alone; drop --quick"),
    (["--report-only", "--set", "lr=1"], r"drop --set"),
])
def test_bad_arguments(argv, pattern):
    with pytest.raises(ValueError, match=pattern):
        parse_args(argv)


def test_quick_grid_settings_apply_to_every_arm_alike(tmp_path):
    s = parse_args(["--quick", "--out", str(tmp_path), "--set", "eval_size=16", "--seeds", "0,2"])
    assert s.grid.name == "tiny-quick" and s.grid.seeds == (0, 2) and s.overrides == {"eval_size": 16}
    runs = compare.run_configs(s)
    assert len(runs) == len(s.grid.presets) * len(s.grid.arms) * 2
    arms = [a.name for a in s.grid.arms]
    assert arms == ["grpo", "rlsd", "rl_zvp", "cast", "cast_contract"]
    for preset in s.grid.presets:
        cfgs = [c for p, _m, _s, c in runs if p == preset]
        assert all((c.max_steps, c.eval_every, c.eval_size, c.save_every, c.tensorboard) == (60, 20, 16, 0, False)
                   for c in cfgs)
        # everything but method, seed and out is identical across the preset's runs, except
        # the cast_contract arm's one documented difference (the contract's CASTConfig)
        strip = lambda c: {k: v for k, v in c.to_dict().items() if k not in ("method", "seed", "out")}  # noqa: E731
        plain = [c for p, m, _s, c in runs if p == preset and m != "cast_contract"]
        assert all(strip(c) == strip(plain[0]) for c in plain)
        contract = [c for p, m, _s, c in runs if p == preset and m == "cast_contract"]
        assert len(contract) == 2 and all(c.method == "cast" and c.cast == CASTConfig() for c in contract)
        assert all({k for k in strip(c) if strip(c)[k] != strip(plain[0])[k]} == {"cast"} for c in contract)
        assert plain[0].cast.deadband == (0.95, 1.05) and contract[0].teacher_refresh_steps == plain[0].teacher_refresh_steps
        assert {c.method for c in cfgs} == {"grpo", "rlsd", "rl_zvp", "cast"}
    assert {Path(c.out).relative_to(tmp_path).parts for _p, _m, _s, c in runs} == {
        (p, m, f"seed{k}") for p in s.grid.presets for m in arms for k in (0, 2)}


# -- grid files --------------------------------------------------------------------------------
def test_builtin_grids_are_the_two_comparisons():
    assert {"tiny-quick", "tiny-full"} <= set(compare.list_grids())
    quick, full = load_grid("tiny-quick"), load_grid("tiny-full")
    assert quick.source == "configs/experiments/tiny-quick.toml"
    assert quick.settings == {"max_steps": 60, "eval_every": 20} and full.settings == {}
    assert quick.arms == full.arms and quick.presets == full.presets == ("tiny-arithmetic", "tiny-multistep")
    assert (quick.baseline, quick.headline, quick.seeds) == ("grpo", ("cast", "cast_contract"), (0, 1, 2))
    assert quick.arm("cast_contract").layer() == {"cast": CASTConfig().to_dict()}
    assert quick.arm("cast_contract").layer()["cast"]["deadband"] == [1.0, 1.0]
    assert quick.arm("grpo").layer() == {} and quick.arm("cast").label == "CAST"
    assert parse_args([]).grid.name == "tiny-full" and parse_args(["--mode", "quick"]).grid.name == "tiny-quick"
    assert parse_args(["--grid", str(REPO / "configs/experiments/tiny-quick.toml")]).out == "runs/compare-quick"


def _grid(**changes):
    data = {"name": "g", "presets": ["tiny-arithmetic"], "seeds": [0, 1],
            "arms": [{"name": "grpo"}, {"name": "cast"}], "settings": {"max_steps": 4}}
    data.update(changes)
    return data


@pytest.mark.parametrize("changes, pattern", [
    ({"budget": 3}, r"unknown key\(s\) \['budget'\]"),
    ({"presets": ["nope"]}, r"presets: unknown preset 'nope'"),
    ({"seeds": [0, 0]}, r"seeds must be a non-empty list of distinct ints"),
    ({"arms": []}, r"arms must be a non-empty array"),
    ({"arms": [{"name": "grpo"}, {"name": "grpo"}]}, r"duplicate arm names"),
    ({"arms": [{"name": "x"}]}, r"arms\[0\] \(x\): method must be one of"),
    ({"arms": [{"name": "c", "method": "cast", "defaults": ["cast"]}]}, r"needs a description"),
    ({"arms": [{"name": "c", "method": "cast", "overrides": {"seed": 3}, "description": "d"}]},
     r"'seed' is not a setting an arm may change"),
    ({"arms": [{"name": "c", "method": "cast", "overrides": {"cast": {"lamda": 1}}, "description": "d"}]},
     r"preset tiny-arithmetic / arm c: CASTConfig: unknown field"),
    ({"settings": {"cast": {"lam": 0.1}}}, r"settings: 'cast.lam' is read by only some methods"),
    ({"settings": {"max_steps": 0}}, r"preset tiny-arithmetic / arm grpo: TrainConfig.max_steps: must be >= 1"),
    ({"preset_settings": {"tiny-multistep": {"lr": 1.0}}}, r"'tiny-multistep' is not one of the grid's presets"),
    ({"baseline": "rlsd"}, r"baseline 'rlsd' is not one of the arms"),
    ({"headline": ["grpo"]}, r"headline: 'grpo' is not an arm other than the baseline"),
    ({"privileged_template": "{prompt}"}, r"needs both \{prompt\} and \{answer\}"),
])
def test_bad_grid_files_name_the_key(changes, pattern):
    with pytest.raises(ValueError, match=pattern):
        grid_from_mapping(_grid(**changes), source="g.toml")


REAL_MODEL_GRID = """
# A real-model grid is only a file: a local model, LoRA, eval size and budget for every arm.
name = "paper-lora"
title = "Real model: GRPO vs CAST"
presets = ["cast-paper"]
seeds = [0, 1, 2]
baseline = "grpo"
headline = ["cast_contract", "cast_gap005"]
caveats = ["One model, three seeds."]
[settings]
model = "{model}"
lora = true
lora_r = 8
eval_size = 32
max_steps = 20
eval_every = 10
[[arms]]
name = "grpo"
[[arms]]
name = "cast_contract"
method = "cast"
defaults = ["cast"]
description = "CAST with the contract's default CASTConfig"
[[arms]]
name = "cast_gap005"
method = "cast"
overrides = {{ cast = {{ deadband = [0.95, 1.05] }} }}
description = "CAST with the authors' gap005 deadband"
"""


def test_a_real_model_grid_is_only_a_file(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    path = tmp_path / "paper-lora.toml"
    path.write_text(REAL_MODEL_GRID.format(model=model))
    s = parse_args(["--grid", str(path), "--out", str(tmp_path / "runs")])
    runs = compare.run_configs(s)            # no warm-start check for a model directory
    assert len(runs) == 9 and {a for _p, a, _s, _c in runs} == {"grpo", "cast_contract", "cast_gap005"}
    by_arm = {a: c for _p, a, _s, c in runs}
    for c in by_arm.values():
        assert (c.model, c.lora, c.lora_r, c.eval_size, c.max_steps) == (str(model), True, 8, 32, 20)
    assert by_arm["grpo"].method == "grpo" and by_arm["cast_gap005"].method == "cast"
    assert by_arm["cast_contract"].cast == CASTConfig()
    # the preset's own CAST parameters (lam_decay_steps = 300) stay, with the arm's deadband on top
    assert by_arm["cast_gap005"].cast == CASTConfig(lam_decay_steps=300, deadband=(0.95, 1.05))
    saved = {a: json.loads(json.dumps(c.to_dict())) for a, c in by_arm.items()}
    arms = {a.name: a for a in s.grid.arms}
    assert all(compare.unexpected_differences(saved["grpo"], cfg, arms[a]) == [] for a, cfg in saved.items())
    from cast_torch.train.compare.grid import arm_differences
    assert arm_differences(saved["grpo"], arms["cast_gap005"]) == [
        {"key": "cast.deadband", "value": [0.95, 1.05], "preset": [1.0, 1.0]}]
    assert arm_differences(saved["grpo"], arms["cast_contract"]) == [
        {"key": "cast.lam_decay_steps", "value": 0, "preset": 300}]


def test_unexpected_differences_accept_exactly_the_arm_difference(tmp_path):
    s = parse_args(["--quick", "--presets", "tiny-arithmetic", "--out", str(tmp_path / "runs")])
    by_arm: dict[str, list] = {}
    for _p, arm, _seed, cfg in compare.run_configs(s):
        by_arm.setdefault(arm, []).append(json.loads(json.dumps(cfg.to_dict())))
    arms = {a.name: a for a in s.grid.arms}
    ref = by_arm["grpo"][0]
    assert all(compare.unexpected_differences(ref, c, arms[a]) == [] for a, cs in by_arm.items() for c in cs)
    contract, arm = by_arm["cast_contract"][0], arms["cast_contract"]
    # the arm without its documented difference, or with any other one, is rejected
    assert compare.unexpected_differences(ref, {**contract, "cast": ref["cast"]}, arm) == ["cast"]
    assert compare.unexpected_differences(ref, {**contract, "lr": 1.0}, arm) == ["lr"]
    assert compare.unexpected_differences(ref, {**contract, "teacher_refresh_steps": 50}, arm) == ["teacher_refresh_steps"]
    assert compare.unexpected_differences(ref, {**contract, "method": "grpo"}, arm) == ["method"]
    # a plain method may not carry the arm's difference
    assert compare.unexpected_differences(ref, {**by_arm["cast"][0], "cast": contract["cast"]}, arms["cast"]) == ["cast"]


def test_plain_methods_join_a_grid_as_arms_of_their_own():
    s = parse_args(["--methods", "grpo,opsd,cast_contract"])
    assert [(a.name, a.method, a.layer()) for a in s.grid.arms][:2] == [("grpo", "grpo", {}), ("opsd", "opsd", {})]
    assert s.grid.headline == ("cast_contract",) and s.grid.baseline == "grpo"
    assert parse_args(["--methods", "cast,rlsd"]).grid.baseline == ""   # no GRPO: no deltas
    assert Arm("x", "cast", defaults=("teacher_refresh_steps",), description="d").layer() == {"teacher_refresh_steps": 50}


# -- the runner -------------------------------------------------------------------------------
def test_load_runs_names_the_missing_run(tmp_path):
    with pytest.raises(ValueError, match=r"no metrics for tiny-arithmetic / cast / seed 1"):
        load_runs(tmp_path, ["tiny-arithmetic"], ["cast"], [1])


def test_load_runs_refuses_an_incomplete_run(tmp_path):
    d = tmp_path / "tiny-arithmetic" / "cast" / "seed0"
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"max_steps": 10}))
    (d / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in (
        {"step": 0, "eval_accuracy": 0.2}, {"step": 5, "reward_mean": 0.3, "eval_accuracy": 0.4})))
    with pytest.raises(ValueError, match=r"seed 0 .* is incomplete \(last evaluation at step 5, max_steps 10\)"):
        load_runs(tmp_path, ["tiny-arithmetic"], ["cast"], [0])


def test_a_run_is_reused_only_when_complete_with_the_same_config(tmp_path):
    s = parse_args(["--quick", "--presets", "tiny-arithmetic", "--methods", "grpo", "--seeds", "0",
                    "--out", str(tmp_path)])
    (_p, _a, _s, cfg), = compare.run_configs(s)
    d = Path(cfg.out)
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps(cfg.to_dict()))
    lines = [{"step": 0, "eval_accuracy": 0.2}, {"step": 60, "reward_mean": 0.3, "eval_accuracy": 0.4}]
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert compare.is_complete(d, cfg)
    assert compare.is_complete(d, cfg.replace(num_threads=4))        # threads do not change results
    assert not compare.is_complete(d, cfg.replace(lr=1e-3))
    assert not compare.is_complete(d, cfg.replace(max_steps=61))
    (d / "metrics.jsonl").write_text(json.dumps(lines[0]) + "\n{\"step\": 60, \"rew")   # torn last line
    assert not compare.is_complete(d, cfg)


def test_two_comparisons_cannot_train_into_one_directory(tmp_path):
    settings = parse_args(["--quick", "--out", str(tmp_path), "--methods", "grpo", "--seeds", "0",
                           "--presets", "tiny-arithmetic"])
    (tmp_path / ".compare.lock").write_text(str(os.getpid()))   # a live process holds it
    with pytest.raises(ValueError, match=r"another comparison \(pid \d+\) is training into"):
        compare.run_comparison(settings)
    assert not (tmp_path / "tiny-arithmetic").exists()


# -- the privileged-teacher statistics -----------------------------------------------------
def test_seq_gap_auc_pairs_within_groups_only():
    rewards = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 0.0])
    groups = np.array([0, 0, 0, 1, 1, 2])            # group 1 all correct, group 2 a single wrong one
    mask = np.ones((6, 2), dtype=bool)
    mask[2, 1] = False
    gaps = np.array([[1.0, 0.0], [0.5, 0.0], [1.0, np.nan], [-9, -9], [-9, -9], [9, 9]])
    auc, pairs = seq_gap_auc(rewards, groups, gaps, mask)
    # group 0: correct S=1.0 vs wrong S=0.5 (win) and S=1.0 (tie, NaN outside the mask ignored)
    assert pairs == 2 and auc == pytest.approx(0.75)
    assert math.isnan(seq_gap_auc(rewards[3:5], groups[3:5], gaps[3:5], mask[3:5])[0])
    with pytest.raises(ValueError, match=r"NaN inside the mask at index \(1, 0\)"):
        seq_gap_auc(rewards, groups, np.where(np.eye(6, 2, -1) > 0, np.nan, gaps), mask)


def test_privileged_metrics_keys_and_values():
    rewards = np.array([1.0, 1.0, 0.0, 0.0])
    groups = np.array([0, 0, 0, 0])
    mask = np.ones((4, 3), dtype=bool)
    free = np.zeros((4, 3))
    priv = np.array([[1.0, 1, -1], [1, 1, 1], [-1, -1, -1], [1, -1, -1]])
    out = privileged_metrics(rewards, groups, free, priv, mask, CASTConfig(), 0)
    assert out["priv_teacher_pos_frac_correct"] == pytest.approx(5 / 6)
    assert out["priv_teacher_pos_frac_wrong"] == pytest.approx(1 / 6)
    assert out["priv_gap_mean_correct"] == pytest.approx(4 / 6)
    assert out["priv_seq_gap_auc"] == pytest.approx(1.0) and out["seq_gap_auc"] == pytest.approx(0.5)
    assert out["seq_gap_pairs"] == 4.0


def test_privileged_trainer_refuses_a_template_without_the_answer():
    from cast_torch.train import get_preset
    cfg = get_preset("tiny-arithmetic", out="unused")
    with pytest.raises(ValueError, match="no \\{answer\\} slot"):
        PrivilegedDiagnosticsTrainer(cfg, privileged_template="Q: {prompt}")
    with pytest.raises(ValueError, match="unknown slot"):
        PrivilegedDiagnosticsTrainer(cfg, privileged_template="{prompt} {answer} {hint}")


# -- end to end (slow) -------------------------------------------------------------------------
@pytest.mark.slow
def test_tiny_comparison_end_to_end(tmp_path):
    """1 seed, GRPO and CAST, 2 steps, tiny warm start in a private cache: runs, report, analysis keys."""
    argv = ["--quick", "--presets", "tiny-arithmetic", "--methods", "grpo,cast", "--seeds", "0",
            "--out", str(tmp_path / "runs"), "--report-dir", str(tmp_path / "rep"),
            "--set", "max_steps=2", "--set", "eval_every=2", "--set", "eval_size=16",
            "--set", "warm_start_steps=20", "--set", f"cache_dir={tmp_path / 'cache'}"]
    assert main(argv) == 0
    text = (tmp_path / "rep" / "method-comparison.md").read_text()
    summary = json.loads((tmp_path / "rep" / "method-comparison.json").read_text())
    assert compare.sections(summary) == ["Verdict", "Setup", "tiny-arithmetic", "Plots", "Caveats",
                                         "Exact run settings"]
    assert all(f"\n## {h}" in text for h in compare.sections(summary))
    assert summary["presets"]["tiny-arithmetic"]["deltas"]["cast"]["direction"] in ("better", "worse", "tied")
    cast_recs = [json.loads(x) for x in (tmp_path / "runs/tiny-arithmetic/cast/seed0/metrics.jsonl").read_text().splitlines()]
    grpo_recs = [json.loads(x) for x in (tmp_path / "runs/tiny-arithmetic/grpo/seed0/metrics.jsonl").read_text().splitlines()]
    steps = [r for r in cast_recs if r["step"] >= 1]
    assert len(steps) == 2 and all("priv_gap_mean_correct" in r and "priv_seq_gap_auc" in r for r in steps)
    assert not any("priv_gap_mean_correct" in r for r in grpo_recs)

    # The analysis must not change training: the same CAST run with the plain Trainer.
    from cast_torch.train import Trainer
    from cast_torch.train.config import config_from_mapping
    cfg = json.loads((tmp_path / "runs/tiny-arithmetic/cast/seed0/config.json").read_text())
    cfg["out"] = str(tmp_path / "plain")
    Trainer(config_from_mapping(cfg), log=lambda _m: None).train()
    plain = [json.loads(x) for x in (tmp_path / "plain/metrics.jsonl").read_text().splitlines()]
    for a, b in zip(plain, cast_recs):
        for k in ("reward_mean", "loss", "grad_norm", "gap_mean_correct", "eval_accuracy"):
            assert a.get(k) == b.get(k), k
    # a rerun reuses the complete runs instead of training them again
    assert compare.is_complete(tmp_path / "runs/tiny-arithmetic/cast/seed0", config_from_mapping(
        {**cfg, "out": str(tmp_path / "runs/tiny-arithmetic/cast/seed0")}))
