"""The method-comparison runner: argument handling, the report writer on fabricated
metrics, the privileged-teacher statistics, and (slow) one tiny end-to-end comparison."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from cast_torch.train import compare
from cast_torch.train.analysis import PrivilegedDiagnosticsTrainer, privileged_metrics, seq_gap_auc
from cast_torch.train.compare import CompareSettings, load_runs, main, parse_args, summarize, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


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
    (["--presets", "cast-paper"], r"has no full budget"),
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
    (["--privileged-template", "{prompt}"], r"needs both \{prompt\} and \{answer\}"),
])
def test_bad_arguments(argv, pattern):
    with pytest.raises(ValueError, match=pattern):
        parse_args(argv)


def test_quick_mode_settings_apply_to_every_method_alike(tmp_path):
    s = parse_args(["--quick", "--out", str(tmp_path), "--set", "eval_size=16", "--seeds", "0,2"])
    assert s.mode == "quick" and s.seeds == (0, 2) and s.overrides == {"eval_size": 16}
    runs = compare.run_configs(s)
    assert len(runs) == len(s.presets) * len(s.methods) * 2
    for preset in s.presets:
        cfgs = [c for p, _m, _s, c in runs if p == preset]
        budget = {k: getattr(cfgs[0], k) for k in compare.MODES["quick"][preset]}
        assert budget == compare.MODES["quick"][preset]
        # everything but method, seed and out is identical across the preset's runs, except
        # the cast_contract arm's one documented difference (the contract's CASTConfig)
        strip = lambda c: {k: v for k, v in c.to_dict().items() if k not in ("method", "seed", "out")}  # noqa: E731
        plain = [c for p, m, _s, c in runs if p == preset and m != "cast_contract"]
        assert all(strip(c) == strip(plain[0]) for c in plain)
        contract = [c for p, m, _s, c in runs if p == preset and m == "cast_contract"]
        assert len(contract) == 2 and all(c.method == "cast" and c.cast.deadband == (1.0, 1.0) for c in contract)
        assert all({k for k in strip(c) if strip(c)[k] != strip(plain[0])[k]} == {"cast"} for c in contract)
        assert plain[0].cast.deadband == (0.95, 1.05) and contract[0].teacher_refresh_steps == plain[0].teacher_refresh_steps
        assert {c.method for c in cfgs} == set(s.methods) - {"cast_contract"}
    assert {Path(c.out).relative_to(tmp_path).parts for _p, _m, _s, c in runs} == {
        (p, m, f"seed{k}") for p in s.presets for m in s.methods for k in (0, 2)}


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
    from cast_core import CASTConfig
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


# -- the report writer on fabricated metrics -------------------------------------------------
FINAL = {"grpo": [0.50, 0.55, 0.60], "cast": [0.60, 0.70, 0.65], "rlsd": [0.40, 0.50, 0.45],
         "cast_contract": [0.45, 0.60, 0.50]}


def _fabricate(root: Path, preset: str, steps: int = 10) -> None:
    rng = np.random.default_rng(0)
    for method, finals in FINAL.items():
        for seed, final in enumerate(finals):
            d = root / preset / method / f"seed{seed}"
            d.mkdir(parents=True)
            recs = [{"step": 0, "eval_accuracy": 0.45}]
            for t in range(1, steps + 1):
                r = {"step": t, "reward_mean": 0.4 + 0.02 * t, "frac_all_correct": 0.1, "frac_all_wrong": 0.2,
                     "frac_mixed": 0.7, "flip_rate_correct": 0.1, "flip_rate_wrong": 0.3, "entropy": 0.5,
                     "step_time": 0.2, "gap_abs_mean": 0.0 if t % 5 == 1 else 0.01,
                     "teacher_pos_frac_correct": 0.6, "teacher_pos_frac_wrong": 0.4,
                     "gap_mean_correct": 0.01, "gap_mean_wrong": -0.01, "seq_gap_auc": 0.7 if t % 2 else 0.6}
                if method in ("cast", "cast_contract"):
                    r.update({"priv_teacher_pos_frac_correct": 0.3, "priv_teacher_pos_frac_wrong": 0.35,
                              "priv_gap_mean_correct": -1.0, "priv_gap_mean_wrong": -0.9,
                              "priv_flip_rate_correct": 0.6, "priv_flip_rate_wrong": 0.4,
                              "priv_seq_gap_auc": float(rng.uniform(0.2, 0.45))})
                if t in (5, steps):
                    r["eval_accuracy"] = final if t == steps else 0.5
                recs.append(r)
            (d / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in recs) + "\n")


def test_report_on_fabricated_metrics(tmp_path):
    presets = ("tiny-arithmetic",)
    _fabricate(tmp_path / "runs", presets[0])
    settings = CompareSettings(presets=presets, methods=("grpo", "rlsd", "cast", "cast_contract"), seeds=(0, 1, 2),
                               mode="quick",
                               out=str(tmp_path / "runs"), report_dir=str(tmp_path / "rep"),
                               privileged_template="T {answer} {prompt}", command="python x.py --quick")
    path = compare.make_report(settings)
    summary = json.loads((tmp_path / "rep" / "method-comparison.json").read_text())["summary"][presets[0]]
    d = summary["delta_cast_grpo"]
    assert d["per_seed"] == pytest.approx({"0": 0.10, "1": 0.15, "2": 0.05})
    assert d["mean"] == pytest.approx(0.10) and d["std"] == pytest.approx(0.05)
    assert d["ranges_disjoint"] is False and d["seeds_cast_better"] == 3
    assert summary["methods"]["cast"]["final_std"] == pytest.approx(0.05)
    gaps = summary["gaps"]
    assert gaps["lagged_steps"] == {"0": 8, "1": 8, "2": 8}     # steps 1 and 6 have g = 0
    assert gaps["answer_free"]["seq_gap_auc"]["mean"] == pytest.approx(0.65)
    assert gaps["answer_free"]["auc_steps_above"] == 24 and gaps["answer_free"]["auc_sign_p"] < 1e-6
    assert gaps["privileged"]["seq_gap_auc"]["mean"] < 0.5

    text = path.read_text()
    assert "CAST beat GRPO here by 10.0 accuracy points" in text
    assert "paired delta +10.0 ± 5.0 points over 3 seeds" in text
    assert "does **not** exceed the seed spread" in text
    # last-3 evaluations of a CAST run: 0.5 (step 5) and the final one
    assert summary["methods"]["cast"]["tail"]["1"] == pytest.approx((0.5 + 0.7) / 2)
    assert d["tail_mean"] == pytest.approx(0.05)
    assert "| cast | 65.0 ± 5.0 | 60.0 | 70.0 | 65.0 | +10.0 ± 5.0 | 57.5 ± 2.5 | 45.0 |" in text
    assert "| rlsd | 45.0 ± 5.0 | 40.0 | 50.0 | 45.0 | -10.0 ± 5.0 | 47.5 ± 2.5 | 45.0 |" in text
    # the cast_contract arm: its own row, dynamics row, verdict line and gap rows; the CAST verdict stays about cast
    assert "| cast_contract | 51.7 ± 7.6 | 45.0 | 60.0 | 50.0 | -3.3 ± 7.6 |" in text
    assert summary["delta_cast_contract_grpo"]["mean"] == pytest.approx(-1 / 30)
    assert summary["delta_cast_contract_grpo"]["seeds_cast_better"] == 1
    assert "cast_contract did **not** beat GRPO here: it was 3.3 accuracy points lower" in text
    assert "cast_contract − GRPO per seed: seed 0: -5.0, seed 1: +5.0, seed 2: -10.0" in text
    assert "| cast_contract | 51.0 ± 0.0 |" in text            # dynamics table (reward 0.4 + 0.02 t, t = 1..10)
    assert "| cast_contract | answer-free |" in text and "| cast_contract | privileged |" in text
    assert "gaps_cast_contract" in summary
    assert "last 3 evaluations (less noisy than the final one) the paired delta is +5.0 ± 2.5 points" in text
    assert "python x.py --quick" in text and "quick-mode figures" in text
    assert "No method-specific tuning" in text
    pngs = sorted(p.name for p in (tmp_path / "rep").glob("*.png"))
    assert pngs == [f"method-comparison-{k}.png" for k in
                    ("eval-accuracy", "flip-rates", "gaps", "reward", "zero-variance")]
    for name in pngs:
        data = (tmp_path / "rep" / name).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 5000
        assert f"]({name})" in text


def _saved_configs(tmp_path, preset):
    """The config.json dicts the runner would save for every run of ``preset``, by arm."""
    s = parse_args(["--quick", "--presets", preset, "--out", str(tmp_path / "runs")])
    out = {}
    for _p, arm, _seed, cfg in compare.run_configs(s):
        out.setdefault(arm, []).append(json.loads(json.dumps(cfg.to_dict())))
    return s, out


def test_cast_contract_difference_is_the_only_one_accepted(tmp_path):
    preset = "tiny-arithmetic"
    settings, by_arm = _saved_configs(tmp_path, preset)
    ref = by_arm["grpo"][0]
    assert all(compare.unexpected_differences(ref, c, arm) == [] for arm, cs in by_arm.items() for c in cs)
    contract = by_arm["cast_contract"][0]
    # the arm without its documented difference, or with any other one, is rejected
    assert compare.unexpected_differences(ref, {**contract, "cast": ref["cast"]}, "cast_contract") == ["cast"]
    assert compare.unexpected_differences(ref, {**contract, "lr": 1.0}, "cast_contract") == ["lr"]
    assert compare.unexpected_differences(
        ref, {**contract, "teacher_refresh_steps": 50}, "cast_contract") == ["teacher_refresh_steps"]
    assert compare.unexpected_differences(ref, {**contract, "method": "grpo"}, "cast_contract") == ["method"]
    # a plain method may not carry the arm's difference
    assert compare.unexpected_differences(ref, {**by_arm["cast"][0], "cast": contract["cast"]}, "cast") == ["cast"]

    _fabricate(tmp_path / "runs", preset)
    runs = load_runs(tmp_path / "runs", [preset], list(FINAL), [0, 1, 2])
    rep = CompareSettings(presets=(preset,), methods=tuple(FINAL), seeds=(0, 1, 2), mode="quick",
                          out=str(tmp_path / "runs"), report_dir=str(tmp_path / "rep"), privileged=False)
    cfgs = {arm: by_arm[arm] for arm in FINAL}
    text = write_report(runs, summarize(runs), rep, configs={preset: cfgs}).read_text()
    assert ("their settings are identical apart from method, seed and output directory and the documented "
            "difference of `cast_contract`.") in text
    assert ("cast_contract: CAST with the contract's default deadband (1.0, 1.0) instead of the preset's "
            "(0.95, 1.05); nothing else differs.") in text
    bad = {**cfgs, "cast_contract": [*cfgs["cast_contract"][:2], {**cfgs["cast_contract"][2], "temperature": 0.5}]}
    text = write_report(runs, summarize(runs), rep, configs={preset: bad}).read_text()
    assert "**NOT identical** apart from method, seed and output directory" in text
    assert "(differing: `temperature`)" in text
    same = {**cfgs, "cast_contract": [{**c, "cast": cfgs["cast"][0]["cast"]} for c in cfgs["cast_contract"]]}
    text = write_report(runs, summarize(runs), rep, configs={preset: same}).read_text()
    assert "**NOT identical**" in text and "(differing: `cast`)" in text


def test_cast_contract_is_a_default_arm_and_parses():
    assert compare.DEFAULT_METHODS.index("cast_contract") == compare.DEFAULT_METHODS.index("cast") + 1
    assert parse_args(["--methods", "grpo,cast_contract"]).methods == ("grpo", "cast_contract")
    assert compare.arm_method("cast_contract") == "cast" and compare.arm_method("rlsd") == "rlsd"
    assert compare.arm_overrides("grpo") == {}


def test_report_says_when_cast_loses_and_the_difference_exceeds_the_spread(tmp_path):
    runs = {"tiny-multistep": {
        "grpo": {s: [{"step": 0, "eval_accuracy": 0.3}, {"step": 1, "reward_mean": 0.5, "eval_accuracy": a}]
                 for s, a in enumerate([0.80, 0.82, 0.84])},
        "cast": {s: [{"step": 0, "eval_accuracy": 0.3}, {"step": 1, "reward_mean": 0.5, "eval_accuracy": a}]
                 for s, a in enumerate([0.70, 0.71, 0.72])},
    }}
    summary = summarize(runs)
    d = summary["tiny-multistep"]["delta_cast_grpo"]
    assert d["mean"] == pytest.approx(-0.11) and d["ranges_disjoint"] is True and d["seeds_cast_better"] == 0
    settings = CompareSettings(presets=("tiny-multistep",), methods=("grpo", "cast"), seeds=(0, 1, 2),
                               report_dir=str(tmp_path), privileged=False)
    text = write_report(runs, summary, settings).read_text()
    assert "CAST did **not** beat GRPO here: it was 11.0 accuracy points lower" in text
    assert "the difference exceeds the seed spread" in text


def test_load_runs_names_the_missing_run(tmp_path):
    with pytest.raises(ValueError, match=r"no metrics for tiny-arithmetic / cast / seed 1"):
        load_runs(tmp_path, ["tiny-arithmetic"], ["cast"], [1])


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
    assert "## tiny-arithmetic" in text and ("CAST beat GRPO" in text or "CAST did **not** beat GRPO" in text
                                             or "CAST and GRPO tied" in text)
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
    assert compare._is_complete(tmp_path / "runs/tiny-arithmetic/cast/seed0", config_from_mapping(
        {**cfg, "out": str(tmp_path / "runs/tiny-arithmetic/cast/seed0")}))


def test_load_runs_refuses_an_incomplete_run(tmp_path):
    d = tmp_path / "tiny-arithmetic" / "cast" / "seed0"
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"max_steps": 10}))
    (d / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in (
        {"step": 0, "eval_accuracy": 0.2}, {"step": 5, "reward_mean": 0.3, "eval_accuracy": 0.4})))
    with pytest.raises(ValueError, match=r"seed 0 .* is incomplete \(last evaluation at step 5, max_steps 10\)"):
        load_runs(tmp_path, ["tiny-arithmetic"], ["cast"], [0])


def test_two_comparisons_cannot_train_into_one_directory(tmp_path):
    import os
    settings = parse_args(["--quick", "--out", str(tmp_path), "--methods", "grpo", "--seeds", "0",
                           "--presets", "tiny-arithmetic"])
    (tmp_path / ".compare.lock").write_text(str(os.getpid()))   # a live process holds it
    with pytest.raises(ValueError, match=r"another comparison \(pid \d+\) is training into"):
        compare.run_comparison(settings)
    assert not (tmp_path / "tiny-arithmetic").exists()
