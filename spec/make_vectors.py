"""Generate the conformance vectors in spec/vectors/*.json from the exact oracle.

    python spec/make_vectors.py            # (re)write spec/vectors/*.json
    python spec/make_vectors.py --check    # exit 1 if the files on disk differ

The output is deterministic: rerunning produces byte-identical files, and
``tests/spec/test_vectors_fresh.py`` fails if the files on disk drift from what this
script produces. The file format is described in spec/vectors/SCHEMA.md.

Every case's expected value is computed by ``spec/oracle.py``; every error case is
checked to raise in the oracle too. Inputs are kept away from the spec's decision
boundaries (exp(g) at a deadband edge, ρ at a clip bound, σ at eps) by at least a
relative 1e-6, asserted below, so a correct float64 implementation cannot land on the
other side of a branch by rounding.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import random
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VECTORS_DIR = HERE / "vectors"
SCHEMA_VERSION = 1
ATOL = 1e-12
RTOL = 1e-9
MARGIN = 1e-6  # minimum relative distance of any input from a decision boundary


def _load_oracle():
    spec = importlib.util.spec_from_file_location("cast_spec_oracle", HERE / "oracle.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("cast_spec_oracle", module)
    spec.loader.exec_module(module)
    return module


oracle = _load_oracle()

NAN, INF = float("nan"), float("inf")


# ----------------------------------------------------------------------------------
# Boundary guards (generation-time assertions)
# ----------------------------------------------------------------------------------
def _far(x: float, edge: float, what: str) -> None:
    if x == edge:
        return  # exactly representable and unambiguous (e.g. g = 0 against exp(0) = 1)
    if abs(x - edge) <= MARGIN * max(abs(edge), 1e-300):
        raise AssertionError(f"{what}: {x!r} is within {MARGIN} of the boundary {edge!r}")


def _guard_advantages(gaps, mask, config: dict) -> None:
    c = {**oracle.DEFAULTS, **config}
    lo, hi = c["deadband"]
    if not lo < hi:
        return
    for i, row in enumerate(gaps):
        for t, g in enumerate(row):
            if mask[i][t] and math.isfinite(g):
                e = math.exp(g)
                if g != 0:
                    _far(e, lo, f"exp(gaps[{i}][{t}]) vs deadband lo")
                    _far(e, hi, f"exp(gaps[{i}][{t}]) vs deadband hi")


def _guard_loss(logp, old_logp, mask, clip_low, clip_high) -> None:
    for i, row in enumerate(logp):
        for t, lp in enumerate(row):
            if mask[i][t]:
                rho = math.exp(lp - old_logp[i][t])
                _far(rho, 1 - clip_low, f"rho[{i}][{t}] vs 1 - clip_low")
                _far(rho, 1 + clip_high, f"rho[{i}][{t}] vs 1 + clip_high")


# ----------------------------------------------------------------------------------
# Case builders
# ----------------------------------------------------------------------------------
def _ones(n: int, t: int) -> list[list[int]]:
    return [[1] * t for _ in range(n)]


def _case(name: str, description: str, function: str, inputs: dict, *, config: dict | None = None,
          params: dict | None = None, step: int | None = None, expected: Any = None,
          expect_error: str | None = None, dtypes: dict | None = None, shapes: dict | None = None) -> dict:
    case: dict[str, Any] = {"name": name, "description": description, "function": function,
                            "inputs": inputs}
    if config:
        case["config"] = config
    if params:
        case["params"] = params
    if step is not None:
        case["step"] = step
    if dtypes:
        case["dtypes"] = dtypes
    if shapes:
        case["shapes"] = shapes
    if expect_error is not None:
        case["expect_error"] = expect_error
    else:
        case["expected"] = expected
        case["atol"] = ATOL
        case["rtol"] = RTOL
    return case


def adv_case(name, description, rewards, group_ids, gaps, mask=None, config=None, step=0, dtypes=None):
    if mask is None:
        mask = _ones(len(gaps), len(gaps[0]) if gaps else 0)
    config = dict(config or {})
    _guard_advantages(gaps, mask, config)
    expected = oracle.cast_advantages(rewards, group_ids, gaps, mask, config, step)
    return _case(name, description, "cast_advantages",
                 {"rewards": rewards, "group_ids": group_ids, "gaps": gaps, "mask": mask},
                 config=config, step=step, expected=expected, dtypes=dtypes)


def base_case(name, description, rewards, group_ids, config=None, step=0):
    config = dict(config or {})
    expected = oracle.base_advantages(rewards, group_ids, config, step)
    return _case(name, description, "base_advantages", {"rewards": rewards, "group_ids": group_ids},
                 config=config, step=step, expected=expected)


def token_case(name, description, base, gaps, mask=None, config=None, step=0):
    if mask is None:
        mask = _ones(len(gaps), len(gaps[0]))
    config = dict(config or {})
    _guard_advantages(gaps, mask, config)
    expected = oracle.token_advantages(base, gaps, mask, config, step)
    return _case(name, description, "token_advantages", {"base": base, "gaps": gaps, "mask": mask},
                 config=config, step=step, expected=expected)


def loss_case(name, description, logp, old_logp, advantages, mask, ref_logp=None, **params):
    _guard_loss(logp, old_logp, mask, params.get("clip_low", 0.2), params.get("clip_high", 0.28))
    loss = oracle.policy_loss(logp, old_logp, advantages, mask, ref_logp=ref_logp, **params)
    grad = oracle.policy_loss_grad(logp, old_logp, advantages, mask, ref_logp=ref_logp, **params)
    inputs = {"logp": logp, "old_logp": old_logp, "advantages": advantages, "mask": mask}
    if ref_logp is not None:
        inputs["ref_logp"] = ref_logp
    return _case(name, description, "policy_loss", inputs, params=params,
                 expected={"loss": loss, "grad": grad})


def error_case(name, description, function, inputs, *, config=None, params=None, step=None,
               dtypes=None, shapes=None):
    """An input the spec rejects; asserts the oracle rejects it too."""
    try:
        _call_oracle(function, inputs, config or {}, params or {}, step if step is not None else 0)
    except (ValueError, TypeError):
        pass
    else:
        raise AssertionError(f"{name}: the oracle accepted an input the spec rejects")
    return _case(name, description, function, inputs, config=config, params=params, step=step,
                 expect_error="ValueError", dtypes=dtypes, shapes=shapes)


def _call_oracle(function, inputs, config, params, step):
    if function == "cast_advantages":
        return oracle.cast_advantages(inputs["rewards"], inputs["group_ids"], inputs["gaps"],
                                      inputs["mask"], config, step)
    if function == "base_advantages":
        return oracle.base_advantages(inputs["rewards"], inputs["group_ids"], config, step)
    if function == "token_advantages":
        return oracle.token_advantages(inputs["base"], inputs["gaps"], inputs["mask"], config, step)
    if function == "policy_loss":
        return oracle.policy_loss(inputs["logp"], inputs["old_logp"], inputs["advantages"],
                                  inputs["mask"], ref_logp=inputs.get("ref_logp"), **params)
    if function == "grpo_advantages":
        return oracle.grpo_advantages(inputs["rewards"], inputs["group_ids"], inputs["mask"], config)
    if function == "CASTConfig":
        return oracle.resolve_config(config)
    raise AssertionError(function)


# ----------------------------------------------------------------------------------
# advantages.json
# ----------------------------------------------------------------------------------
# The contract's worked example rows.
C_ROW = [0.5, -0.3, 0.0, -0.02]   # a correct completion's gaps
W_ROW = [0.5, -0.3, 0.0, 0.02]    # a wrong completion's gaps


def advantage_cases() -> list[dict]:
    cases = []
    add = cases.append

    # -- the contract's worked example -------------------------------------------------
    add(adv_case("worked_example_group_1100",
                 "Contract worked example: group [1,1,0,0], b = [+1,+1,-1,-1]; correct rows "
                 "[1.025,-1.1,1.0,-1.010101], wrong rows [1.025,-1.1,-1.0,1.010101].",
                 [1.0, 1.0, 0.0, 0.0], [0, 0, 0, 0], [C_ROW, C_ROW, W_ROW, W_ROW]))
    add(adv_case("worked_example_zero_variance_groups",
                 "Contract worked example: all-correct group [1,1] -> b = +1, all-wrong group "
                 "[0,0,0] -> b = -1; tokens follow the same rule.",
                 [1.0, 1.0, 0.0, 0.0, 0.0], [1, 1, 2, 2, 2], [C_ROW, W_ROW, C_ROW, W_ROW, W_ROW]))
    add(adv_case("worked_example_group_1000",
                 "Contract worked example: group [1,0,0,0], b = [1.732051, -0.57735 x3]; correct "
                 "row clipped to [1.2,-1.2,1.2,-1.2], wrong rows [0.591784,-0.635085,-0.57735,0.583182].",
                 [1.0, 0.0, 0.0, 0.0], [3, 3, 3, 3], [C_ROW, W_ROW, W_ROW, W_ROW]))
    add(adv_case("worked_example_full_batch",
                 "All four worked-example groups in one batch (ids 0..3), defaults.",
                 [1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
                 [0, 0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 3],
                 [C_ROW, C_ROW, W_ROW, W_ROW, C_ROW, C_ROW, W_ROW, W_ROW, W_ROW, C_ROW, W_ROW, W_ROW, W_ROW]))
    add(adv_case("worked_example_deadband",
                 "Contract worked example with deadband (0.95, 1.05): the +-0.02 gaps count as 0; "
                 "rows [1.025,-1.1,1.0,1.0] and [1.025,-1.1,-1.0,-1.0].",
                 [1.0, 1.0, 0.0, 0.0], [0, 0, 0, 0], [C_ROW, C_ROW, W_ROW, W_ROW],
                 config={"deadband": [0.95, 1.05]}))
    add(adv_case("worked_example_decay_step150",
                 "Contract worked example with lam_decay_steps=300 at step 150: lambda = 0.25, "
                 "s = 0.5; all-correct b = +0.5, all-wrong b = -0.5, the mixed correct row "
                 "[1.0125,-1.05,1.0,-1.005050].",
                 [1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0],
                 [0, 0, 0, 0, 1, 1, 2, 2, 2],
                 [C_ROW, C_ROW, W_ROW, W_ROW, C_ROW, C_ROW, W_ROW, W_ROW, W_ROW],
                 config={"lam_decay_steps": 300}, step=150))

    # -- Step 2 branches ------------------------------------------------------------------
    pos_gaps = [0.01, 0.03, 0.2, 2.0, 0.0]
    neg_gaps = [-0.01, -0.1, -0.5, -3.0, 0.0]
    add(adv_case("positive_side_unflipped",
                 "b > 0 with g >= 0: b*W(exp(g), 0.8, 1.05); g = 0.03 and up saturate at 1.05.",
                 [1.0, 0.0], [0, 0], [pos_gaps, [0.0] * 5]))
    add(adv_case("positive_side_down_flip",
                 "b > 0 with g < 0 flips negative: -|b|*W(exp(-g), max(1, 0.95), 1.2).",
                 [1.0, 0.0], [0, 0], [neg_gaps, [0.0] * 5]))
    add(adv_case("negative_side_unflipped",
                 "b < 0 with g <= 0: b*W(exp(-g), 0.95, 1.2).",
                 [1.0, 0.0], [0, 0], [[0.0] * 5, neg_gaps]))
    add(adv_case("negative_side_up_flip",
                 "b < 0 with g > 0 flips positive: |b|*W(exp(g), max(1, 0.8), 1.05).",
                 [1.0, 0.0], [0, 0], [[0.0] * 5, pos_gaps]))
    add(adv_case("flip_floor_above_hi",
                 "w_clip_correct = (0.5, 0.9): an up-flip's range (max(1, 0.5), 0.9) has lo > hi; "
                 "clip(x, lo, hi) = min(max(x, lo), hi) = 0.9, so W = 1 + 0.5*(0.9 - 1) = 0.95.",
                 [1.0, 0.0], [0, 0], [[0.0] * 5, pos_gaps], config={"w_clip_correct": [0.5, 0.9]}))
    mixed_gaps = [-2.0, -0.4, -0.04, 0.0, 0.04, 0.4, 2.0]
    add(adv_case("flip_correct_off",
                 "flip_correct=False: teacher-negative tokens of positive rows keep b's sign, "
                 "weighted b*W(exp(g), 0.8, 1.05) (the low clip 0.8 binds for g = -0.4, -2).",
                 [1.0, 0.0], [0, 0], [mixed_gaps, mixed_gaps], config={"flip_correct": False}))
    add(adv_case("flip_wrong_off",
                 "flip_wrong=False: teacher-positive tokens of negative rows keep b's sign, "
                 "weighted b*W(exp(-g), 0.95, 1.2).",
                 [1.0, 0.0], [0, 0], [mixed_gaps, mixed_gaps], config={"flip_wrong": False}))
    add(adv_case("both_flips_off",
                 "No flips: every token keeps the sign of its row's base.",
                 [1.0, 0.0, 1.0, 1.0, 0.0], [0, 0, 1, 1, 2], [mixed_gaps] * 5,
                 config={"flip_correct": False, "flip_wrong": False}))
    add(adv_case("flip_floors_above_one",
                 "w_clip_correct lo 1.02 > 1 and w_clip_wrong lo 1.1 > 1: the flip floors "
                 "max(1, lo) are the lows themselves; g = 0 on the positive side gets 1.02.",
                 [1.0, 0.0], [0, 0], [mixed_gaps, mixed_gaps],
                 config={"w_clip_correct": [1.02, 1.1], "w_clip_wrong": [1.1, 1.3], "adv_clip": [-5.0, 5.0]}))
    add(adv_case("flip_floors_below_one",
                 "Wide weight clips (0.5, 1.5) / (0.7, 1.3): flipped tokens are floored at 1, "
                 "unflipped ones may shrink below 1.",
                 [1.0, 0.0], [0, 0], [mixed_gaps, mixed_gaps],
                 config={"w_clip_correct": [0.5, 1.5], "w_clip_wrong": [0.7, 1.3], "adv_clip": [-5.0, 5.0],
                         "lam": 0.8}))
    add(adv_case("weight_floor_at_zero",
                 "lam = 2 and w_clip_correct lo 0: W = max(0, 1 + 2(x - 1)) reaches 0 for "
                 "x = exp(g) < 0.5 (g = -2, -0.8) with flip_correct off.",
                 [1.0, 0.0], [0, 0], [[-2.0, -0.8, -0.5, 0.0, 0.03], [0.0] * 5],
                 config={"lam": 2.0, "w_clip_correct": [0.0, 1.05], "flip_correct": False}))

    # -- deadband -------------------------------------------------------------------------
    db_gaps = [0.04, -0.05, 0.06, -0.06, 0.0, 0.3]
    add(adv_case("deadband_gap005",
                 "deadband (0.95, 1.05): exp(0.04)=1.041 and exp(-0.05)=0.951 are inside (g -> 0), "
                 "exp(+-0.06) outside.",
                 [1.0, 0.0, 1.0, 1.0, 0.0, 0.0], [0, 0, 1, 1, 2, 2], [db_gaps] * 6,
                 config={"deadband": [0.95, 1.05]}))
    add(adv_case("deadband_wide",
                 "deadband (0.5, 2.0): g = 0.6 and -0.69 inside, 0.7 and -0.7 outside; flips only "
                 "for gaps outside the band.",
                 [1.0, 0.0], [0, 0], [[0.6, -0.69, 0.7, -0.7], [0.6, -0.69, 0.7, -0.7]],
                 config={"deadband": [0.5, 2.0]}))
    add(adv_case("deadband_degenerate_off",
                 "deadband (1.03, 1.03): lo == hi turns the deadband off (a gap with exp(g) = 1.03 "
                 "would not be zeroed either).",
                 [1.0, 0.0], [0, 0], [[0.02, -0.02, 0.0296], [0.02, -0.02, 0.0296]],
                 config={"deadband": [1.03, 1.03]}))
    add(adv_case("deadband_with_inf_gaps",
                 "deadband (0.95, 1.05) never swallows +-inf gaps (exp saturates outside the band).",
                 [1.0, 0.0], [0, 0], [[INF, -INF, 0.01], [INF, -INF, -0.01]],
                 config={"deadband": [0.95, 1.05]}))

    # -- lambda schedule and zero-variance scaling ------------------------------------------
    sched_r = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0]
    sched_g = [0, 0, 1, 1, 2, 2]
    sched_gaps = [[0.3, -0.3, 0.02], [0.3, -0.3, -0.02]] * 3
    for step in (0, 1, 150, 299, 300, 1000):
        add(adv_case(f"lam_decay_D300_step{step}",
                     f"lam_decay_steps=300 at step {step}: lambda = 0.5*(1 - min(step,300)/300), "
                     "s = lambda/0.5 scales the zero-variance bases; mixed bases unscaled.",
                     sched_r, sched_g, sched_gaps, config={"lam_decay_steps": 300}, step=step))
    add(adv_case("lam_decay_D7_step3",
                 "lam_decay_steps=7 at step 3: lambda = 0.5*4/7 (not a binary fraction), s = 4/7.",
                 sched_r, sched_g, sched_gaps, config={"lam_decay_steps": 7}, step=3))
    add(adv_case("lam_decay_D1_step1",
                 "lam_decay_steps=1 at step 1: lambda = 0, s = 0: zero-variance rows exactly 0; "
                 "mixed rows are +-|b| with flips still applied (lambda = 0 does not turn flips off).",
                 sched_r, sched_g, sched_gaps, config={"lam_decay_steps": 1}, step=1))
    add(adv_case("zv_scale_off_with_decay",
                 "zv_scale_with_lam=False: s = 1 although lambda has decayed to 0.25 at step 150.",
                 sched_r, sched_g, sched_gaps, config={"lam_decay_steps": 300, "zv_scale_with_lam": False},
                 step=150))
    add(adv_case("lam_zero",
                 "lam = 0: s = 0, so zero-variance rows are exactly 0; W = 1 everywhere but the "
                 "down/up flips still flip signs.",
                 sched_r, sched_g, sched_gaps, config={"lam": 0.0}))
    add(adv_case("lam_zero_zv_scale_off",
                 "lam = 0 with zv_scale_with_lam=False: s = 1, zero-variance bases +-1, W = 1.",
                 sched_r, sched_g, sched_gaps, config={"lam": 0.0, "zv_scale_with_lam": False}))
    add(adv_case("zv_bases_custom",
                 "zv_pos_base 0.3, zv_neg_base 2.0 with adv_clip (-3, 3): all-correct b = 0.3, "
                 "all-wrong b = -2.0.",
                 sched_r, sched_g, sched_gaps,
                 config={"zv_pos_base": 0.3, "zv_neg_base": 2.0, "adv_clip": [-3.0, 3.0]}))
    add(adv_case("zv_bases_zero",
                 "zv_pos_base = zv_neg_base = 0: zero-variance rows are exactly 0 whatever the gaps.",
                 sched_r, sched_g, [[0.3, -0.3, 0.02], [0.3, -0.3, -0.02], [INF, -INF, 5.0],
                                    [1.0, 2.0, 3.0], [-INF, INF, -5.0], [0.1, 0.2, 0.3]],
                 config={"zv_pos_base": 0.0, "zv_neg_base": 0.0}))

    # -- Step 1 variants ------------------------------------------------------------------
    grp_r = [1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.3, 0.8]
    grp_g = [0, 0, 0, 1, 1, 1, 2, 2]
    grp_gaps = [[0.1, -0.1, 0.5]] * 8
    wide = {"adv_clip": [-10.0, 10.0]}
    add(adv_case("scale_group", "Mixed groups divided by their own population std.",
                 grp_r, grp_g, grp_gaps, config=wide))
    add(adv_case("scale_batch", "Mixed groups: r - group mean, divided by the std of all N rewards.",
                 grp_r, grp_g, grp_gaps, config={**wide, "scale": "batch"}))
    add(adv_case("scale_none", "Mixed groups: r - group mean, not divided (Dr. GRPO).",
                 grp_r, grp_g, grp_gaps, config={**wide, "scale": "none"}))
    add(adv_case("scale_group_ddof1", "Group std with ddof = 1 (sample std).",
                 grp_r, grp_g, grp_gaps, config={**wide, "std_ddof": 1}))
    add(adv_case("scale_batch_ddof1", "Batch std with ddof = 1.",
                 grp_r, grp_g, grp_gaps, config={**wide, "scale": "batch", "std_ddof": 1}))
    add(adv_case("eps_floor_active",
                 "Group std 2**-24 (5.96e-8) < eps = 1e-6: b = (r - mean)/eps = +-0.0596 (rewards "
                 "0.5 +- 2**-24, so the mean 0.5 is exact in float64 and r - mean has no rounding).",
                 [0.5 + 2 ** -24, 0.5 - 2 ** -24], [0, 0], [[0.2, -0.2], [0.2, -0.2]]))
    add(adv_case("eps_custom_large",
                 "eps = 2.0 above the group std 0.5: b = (r - mean)/2 = +-0.25.",
                 [1.0, 0.0], [0, 0], [[0.2, -0.2], [0.2, -0.2]], config={"eps": 2.0}))
    add(adv_case("non_binary_rewards",
                 "Non-binary rewards in one mixed group (threshold 0.5): b = (r - mean)/std, "
                 "0.55 counts as correct, 0.4 as wrong.",
                 [0.9, 0.2, 0.7, 0.4, 0.55], [5] * 5, [[0.3, -0.3, 0.02, -0.02]] * 5, config=wide))
    add(adv_case("non_binary_all_correct",
                 "Rewards 0.7 and 0.9 are all correct (> 0.5): zero-variance base +1*s despite "
                 "unequal rewards.",
                 [0.7, 0.9, 0.1, 0.3], [0, 0, 1, 1], [[0.3, -0.3]] * 4))
    add(adv_case("threshold_strict",
                 "correct_threshold 0: r = 0 is wrong (strict >), r = 1 correct, r = -1 wrong.",
                 [1.0, 0.0, -1.0, 0.0, 0.0], [0, 0, 0, 1, 1], [[0.2, -0.2]] * 5,
                 config={"correct_threshold": 0.0}))
    # With both flips on, Â depends on b only through |b| wherever g != 0 (spec §5's observation),
    # so the sign of a base, which is what r > t against r >= t changes, shows only at g = 0 or with
    # the flips off. Rewards exactly at the default threshold 0.5, in three groups whose class the
    # rule decides: [0.5, 0.5] all wrong (r >= t: all correct), [0.5, 1] mixed (all correct),
    # [0.5, 0] all wrong (mixed).
    at_r = [0.5, 0.5, 0.5, 1.0, 0.5, 0.0]
    at_g = [0, 0, 1, 1, 2, 2]
    add(adv_case("threshold_at_reward_zero_gap",
                 "Rewards equal to the threshold 0.5 are wrong (strict >): groups [0.5, 0.5] all wrong "
                 "(b = -1), [0.5, 1] mixed (b = -1, +1), [0.5, 0] all wrong; the g = 0 tokens give "
                 "Â = b, so they show the sign of every base.",
                 at_r, at_g, [[0.0, 0.2, -0.2]] * 6))
    add(adv_case("threshold_at_reward_flips_off",
                 "The same at-threshold groups with both flips off: every token keeps the sign of "
                 "its row's base, so a row classified the other way changes sign everywhere.",
                 at_r, at_g, [[0.2, -0.2, 0.03]] * 6,
                 config={"flip_correct": False, "flip_wrong": False}))
    add(adv_case("zero_base_row",
                 "Rewards [1, 0.5, 0] with threshold 0.5 form a mixed group whose mean is 0.5: the "
                 "middle row has b = 0 exactly and is exactly 0 whatever its gaps (inf, big).",
                 [1.0, 0.5, 0.0], [0, 0, 0], [[0.1, -0.1, 3.0], [INF, -INF, 40.0], [0.1, -0.1, 3.0]]))
    add(adv_case("one_member_groups",
                 "Groups of one member are all-correct or all-wrong (never mixed): b = +-s.",
                 [1.0, 0.0, 0.2, 0.9], [7, 8, 9, 10], [[0.1, -0.1, 0.0]] * 4))
    add(adv_case("one_member_groups_ddof1",
                 "One-member groups with ddof = 1 and scale batch: still +-1, no std needed.",
                 [1.0, 0.0], [1, 2], [[0.1, -0.1]] * 2, config={"std_ddof": 1, "scale": "batch"}))
    add(adv_case("non_contiguous_unequal_groups",
                 "Interleaved groups of sizes 3, 2, 2 (ids 3, 1, 2) and a mixed group of 3.",
                 [1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0], [3, 1, 3, 2, 1, 2, 3],
                 [[0.2, -0.2, 0.05], [0.2, -0.2, -0.05], [0.7, -0.7, 0.0], [0.01, 0.02, -0.03],
                  [-0.3, 0.3, 0.0], [0.4, -0.4, 1.0], [-1.0, 1.0, 0.5]]))
    add(adv_case("negative_and_large_group_ids",
                 "Group ids -5, 2**40 and 0 (any integers are keys).",
                 [1.0, 0.0, 1.0, 1.0, 0.0], [-5, -5, 2 ** 40, 2 ** 40, 0], [[0.2, -0.2]] * 5))

    # -- non-finite gaps and padding ----------------------------------------------------------
    add(adv_case("inf_gaps",
                 "+-inf gaps inside the mask are legal: exp saturates and the clips keep Â finite "
                 "(positive/negative rows, flip and no-flip branches).",
                 [1.0, 0.0, 1.0, 1.0, 0.0, 0.0], [0, 0, 1, 1, 2, 2],
                 [[INF, -INF, 0.0]] * 6))
    add(adv_case("inf_gaps_flips_off",
                 "+-inf gaps with both flips off: exp(-inf) = 0 meets the low weight clips.",
                 [1.0, 0.0], [0, 0], [[INF, -INF], [INF, -INF]],
                 config={"flip_correct": False, "flip_wrong": False}))
    add(adv_case("inf_gaps_zero_weight_low",
                 "+-inf gaps with weight clip lows 0 and lam 1: the unflipped weight reaches 0 exactly.",
                 [1.0, 0.0], [0, 0], [[INF, -INF], [INF, -INF]],
                 config={"flip_correct": False, "flip_wrong": False, "lam": 1.0,
                         "w_clip_correct": [0.0, 1.05], "w_clip_wrong": [0.0, 1.2]}))
    add(adv_case("nan_inf_padding",
                 "NaN and +-inf outside the mask are never read; those outputs are exactly 0.",
                 [1.0, 0.0, 1.0], [0, 0, 1],
                 [[0.3, NAN, INF], [-0.3, 0.1, NAN], [NAN, -INF, 0.2]],
                 mask=[[1, 0, 0], [1, 1, 0], [0, 0, 1]]))
    add(adv_case("fully_masked_row",
                 "A row with no real tokens is all zeros; it still counts for its group's statistics.",
                 [1.0, 0.0, 0.0], [0, 0, 0], [[NAN, NAN], [0.2, -0.2], [0.1, 0.3]],
                 mask=[[0, 0], [1, 1], [1, 1]]))
    add(adv_case("mask_as_float_01",
                 "A 0/1 float mask is accepted like a bool mask.",
                 [1.0, 0.0], [0, 0], [[0.3, NAN], [0.3, -0.3]], mask=[[1, 0], [1, 1]],
                 dtypes={"mask": "float64"}))
    add(adv_case("T_zero", "T = 0 is allowed and returns an [N, 0] array.",
                 [1.0, 0.0, 1.0], [0, 0, 1], [[], [], []], mask=[[], [], []]))

    # -- clipping -----------------------------------------------------------------------------
    add(adv_case("adv_clip_narrow",
                 "adv_clip (-0.5, 0.7) binds on both sides.",
                 [1.0, 0.0, 0.0], [0, 0, 0], [[0.3, -0.3, 0.0]] * 3, config={"adv_clip": [-0.5, 0.7]}))
    add(adv_case("adv_clip_zero",
                 "adv_clip (0, 0) makes every token 0.",
                 [1.0, 0.0], [0, 0], [[0.3, -0.3, 0.0]] * 2, config={"adv_clip": [0.0, 0.0]}))
    add(adv_case("adv_clip_one_sided",
                 "adv_clip (0, 10): only non-negative advantages survive.",
                 [1.0, 0.0, 0.0], [0, 0, 0], [[0.3, -0.3, 0.0]] * 3, config={"adv_clip": [0.0, 10.0]}))

    # -- seeded random batches ----------------------------------------------------------------
    cases.extend(_random_cases())

    # -- Step 1 alone / Step 2 alone -----------------------------------------------------------
    add(base_case("base_defaults", "Step 1 alone, defaults: mixed, all-correct, all-wrong, one-member.",
                  [1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.6], [0, 0, 0, 1, 1, 2, 2, 3]))
    add(base_case("base_batch_ddof1_decay", "Step 1 alone: scale batch, ddof 1, lam_decay_steps 10 at step 4.",
                  [1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.6], [0, 0, 0, 1, 1, 2, 2, 3],
                  config={"scale": "batch", "std_ddof": 1, "lam_decay_steps": 10}, step=4))
    add(base_case("base_zero_row", "Step 1 alone: rewards [1, 0.5, 0] -> middle base exactly 0.",
                  [1.0, 0.5, 0.0], [4, 4, 4]))
    add(token_case("token_given_bases",
                   "Step 2 alone from given bases [0.3, -0.7, 0, 2.0, -1.5] (a zero base row is exactly 0).",
                   [0.3, -0.7, 0.0, 2.0, -1.5],
                   [[0.1, -0.1, 0.0, INF]] * 5, config={"adv_clip": [-5.0, 5.0]}))
    add(token_case("token_given_bases_decay",
                   "Step 2 alone with lam_decay_steps 4 at step 1 (lambda = 0.375) and a deadband.",
                   [0.3, -0.7, 1.0], [[0.1, -0.1, 0.03, -0.2]] * 3,
                   mask=[[1, 1, 1, 0], [1, 0, 1, 1], [1, 1, 1, 1]],
                   config={"lam_decay_steps": 4, "deadband": [0.9, 1.1]}, step=1))
    return cases


def _random_cases() -> list[dict]:
    """Seeded random batches with random configs (only ``random.random`` is used, which is
    stable across Python versions)."""
    rng = random.Random(20260601)
    u = rng.random

    def pick(seq):
        return seq[min(int(u() * len(seq)), len(seq) - 1)]

    cases = []
    for k in range(10):
        n = 3 + int(u() * 6)
        t = 1 + int(u() * 5)
        n_groups = 1 + int(u() * 3)
        ids = [pick([-2, 0, 5, 11][:n_groups + 1]) for _ in range(n)]
        rewards = [pick([0.0, 1.0, 1.0, 0.0, 0.25, 0.75]) for _ in range(n)]
        gaps, mask = [], []
        for _ in range(n):
            row, mrow = [], []
            for _ in range(t):
                kind = u()
                if kind < 0.06:
                    g = pick([INF, -INF])
                elif kind < 0.12:
                    g = 0.0
                else:
                    g = round((u() * 2 - 1) * pick([0.05, 0.3, 1.5, 6.0]), 6)
                m = 1 if u() < 0.85 else 0
                if not m and u() < 0.5:
                    g = pick([NAN, INF, -INF])
                row.append(g)
                mrow.append(m)
            gaps.append(row)
            mask.append(mrow)
        config = {}
        if u() < 0.4:
            config["scale"] = pick(["batch", "none"])
        if u() < 0.3:
            config["std_ddof"] = 1
        if u() < 0.4:
            config["lam"] = pick([0.25, 1.0, 0.7])
        if u() < 0.4:
            config["lam_decay_steps"] = pick([10, 300])
        if u() < 0.3:
            config["flip_correct"] = False
        if u() < 0.3:
            config["flip_wrong"] = False
        if u() < 0.3:
            config["deadband"] = [0.95, 1.05]
        if u() < 0.3:
            config["adv_clip"] = [-2.5, 2.0]
        if u() < 0.2:
            config["zv_scale_with_lam"] = False
        step = pick([0, 3, 7, 150, 400])
        cases.append(adv_case(f"random_{k:02d}", "Seeded random batch with a random config.",
                              rewards, ids, gaps, mask=mask, config=config, step=step))
    return cases


# ----------------------------------------------------------------------------------
# loss.json
# ----------------------------------------------------------------------------------
def loss_cases() -> list[dict]:
    cases = []
    add = cases.append
    # old_logp fixed; logp - old_logp chosen so that rho lands well inside or outside the
    # clip range [0.8, 1.28]: log rho in {-0.5 (0.61), -0.1 (0.90), 0.1 (1.11), 0.4 (1.49)}.
    old = [[-1.0, -2.0, -0.5, -3.0], [-0.7, -1.2, -2.2, -0.1], [-1.5, -0.9, -0.3, -2.5]]
    shift = [[0.1, -0.1, 0.4, -0.5], [0.4, -0.5, 0.1, -0.1], [0.0, 0.25, -0.25, 0.4]]
    logp = [[o + s for o, s in zip(orow, srow)] for orow, srow in zip(old, shift)]
    adv_pos_neg = [[1.0, 1.0, 1.0, 1.0], [-1.0, -1.0, -1.0, -1.0], [0.5, -0.3, 0.0, 1.2]]
    full = _ones(3, 4)
    ragged = [[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]]
    with_empty = [[1, 1, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]]
    in_range_logp = [[o + 0.05 * ((i + t) % 3 - 1) for t, o in enumerate(orow)] for i, orow in enumerate(old)]

    for agg in ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"):
        add(loss_case(f"loss_{agg}_unclipped",
                      f"{agg}: every ratio inside [1 - 0.2, 1 + 0.28]; gradient -rho*A*weight.",
                      in_range_logp, old, adv_pos_neg, full, agg=agg))
        add(loss_case(f"loss_{agg}_clipping_active",
                      f"{agg}: A > 0 with rho = e^0.4 > 1.28 and A < 0 with rho = e^-0.5 < 0.8 are "
                      "clipped (gradient 0); the other side of each bound is not.",
                      logp, old, adv_pos_neg, ragged, agg=agg))
        add(loss_case(f"loss_{agg}_empty_row",
                      f"{agg}: a row with no tokens; seq-mean-token-mean averages over the 2 live rows.",
                      logp, old, adv_pos_neg, with_empty, agg=agg))
        add(loss_case(f"loss_{agg}_empty_mask",
                      f"{agg}: an all-empty mask gives loss 0.0 (denominators clamped to 1) and a zero gradient.",
                      logp, old, adv_pos_neg, [[0] * 4] * 3, agg=agg))
        add(loss_case(f"loss_{agg}_kl",
                      f"{agg}: beta = 0.04 with ref_logp adds beta*k3, k3 = exp(ref-logp)-(ref-logp)-1; "
                      "gradient adds beta*(1 - exp(ref - logp)).",
                      logp, old, adv_pos_neg, ragged,
                      ref_logp=[[o - 0.2 for o in row] for row in old], agg=agg, beta=0.04))
    add(loss_case("loss_sum_norm_max_len",
                  "seq-mean-token-sum-norm with max_len = 10: divides by N*L = 30, not N*T = 12.",
                  logp, old, adv_pos_neg, ragged, agg="seq-mean-token-sum-norm", max_len=10))
    add(loss_case("loss_custom_clips",
                  "clip_low 0.05, clip_high 0.5: rho = e^0.4 = 1.49 is now inside [0.95, 1.5]; "
                  "e^-0.1 = 0.905 and e^-0.5 = 0.61 are below 0.95 (clipped where A < 0).",
                  logp, old, adv_pos_neg, full, clip_low=0.05, clip_high=0.5))
    add(loss_case("loss_nonfinite_padding",
                  "NaN/inf outside the mask (logp, old_logp, advantages, ref_logp) are never read.",
                  [[-1.0, NAN], [-0.5, INF]], [[-1.1, NAN], [-0.2, -INF]], [[0.7, NAN], [-0.4, INF]],
                  [[1, 0], [1, 0]], ref_logp=[[-1.3, NAN], [-0.6, -INF]], beta=0.1))
    add(loss_case("loss_kl_only",
                  "Zero advantages with beta = 1: the loss and gradient are the k3 term alone.",
                  [[-1.0, -2.0]], [[-1.0, -2.0]], [[0.0, 0.0]], [[1, 1]], ref_logp=[[-0.5, -3.0]], beta=1.0))
    return cases


# ----------------------------------------------------------------------------------
# baselines.json
# ----------------------------------------------------------------------------------
def baseline_cases() -> list[dict]:
    cases = []
    add = cases.append

    def grpo(name, desc, rewards, ids, mask, config=None):
        add(_case(name, desc, "grpo_advantages", {"rewards": rewards, "group_ids": ids, "mask": mask},
                  config=config, expected=oracle.grpo_advantages(rewards, ids, mask, config or {})))

    def rlsd(name, desc, rewards, ids, gaps, mask, config=None, **params):
        add(_case(name, desc, "rlsd_advantages",
                  {"rewards": rewards, "group_ids": ids, "gaps": gaps, "mask": mask}, config=config,
                  params=params, expected=oracle.rlsd_advantages(rewards, ids, gaps, mask,
                                                                 config=config or {}, **params)))

    def zvp(name, desc, rewards, ids, ent, mask, config=None, **params):
        add(_case(name, desc, "rl_zvp_advantages",
                  {"rewards": rewards, "group_ids": ids, "entropies": ent, "mask": mask}, config=config,
                  params=params, expected=oracle.rl_zvp_advantages(rewards, ids, ent, mask,
                                                                   config=config or {}, **params)))

    r = [1.0, 0.0, 0.0, 1.0, 1.0, 0.7, 0.9, 0.1, 0.1, 0.1, 0.6]
    ids = [0, 0, 0, 1, 1, 2, 2, 3, 3, 3, 4]
    m = [[1, 1, 0]] * 11
    grpo("grpo_group", "GRPO: groups of equal rewards (ids 1, 3, 4) -> 0; others (r - mean)/std.", r, ids, m)
    grpo("grpo_batch_ddof1", "GRPO with the batch std (ddof 1).", r, ids, m, {"scale": "batch", "std_ddof": 1})
    grpo("grpo_none", "GRPO without std division (Dr. GRPO).", r, ids, m, {"scale": "none"})
    grpo("grpo_one_member_ddof1", "GRPO, one-member groups with ddof 1 -> 0 (no std needed).",
         [1.0, 0.0, 1.0, 0.0], [0, 1, 2, 2], [[1, 1]] * 4, {"std_ddof": 1})
    grpo("grpo_eps_floor", "GRPO with std 2**-24 below eps: (r - mean)/eps (mean 0.25 exact in float64).",
         [0.25 + 2 ** -24, 0.25 - 2 ** -24], [0, 0], [[1, 0]] * 2)

    rg = [1.0, 0.0, 0.0, 1.0, 1.0, 0.5]
    rid = [0, 0, 0, 1, 1, 0]
    rgaps = [[0.1, -0.1, 0.5, INF], [0.1, -0.1, -0.5, -INF], [0.3, NAN, 0.0, 1.0],
             [INF, -INF, 2.0, NAN], [0.2, 0.2, 0.2, 0.2], [-0.3, 0.3, 0.1, -0.1]]
    rmask = [[1, 1, 1, 1], [1, 1, 1, 1], [1, 0, 1, 1], [1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 1, 1]]
    rlsd("rlsd_step0", "RLSD at step 0 (lambda 0.5): A*(0.5 + 0.5*clip(exp(sign(A) g), 0.8, 1.2)); "
         "zero-variance group (id 1) is 0 even with inf gaps.", rg, rid, rgaps, rmask)
    rlsd("rlsd_step25", "RLSD at step 25 of 50: lambda 0.25.", rg, rid, rgaps, rmask, step=25)
    rlsd("rlsd_step60", "RLSD past the decay: lambda 0, Â = A.", rg, rid, rgaps, rmask, step=60)
    rlsd("rlsd_custom", "RLSD with lam 1, no decay, eps_w 0.5, scale none.", rg, rid, rgaps, rmask,
         config={"scale": "none"}, step=7, lam=1.0, lam_decay_steps=0, eps_w=0.5)

    zr = [1.0, 1.0, 0.0, 0.0, 1.0, 0.0]
    zid = [0, 0, 1, 1, 2, 2]
    ent = [[0.5, 1.5, 0.25, 9.0], [2.0, 0.0, 1.0, 0.5], [0.5, 1.5, 0.25, 9.0],
           [2.0, 0.0, 1.0, NAN], [0.3, 0.6, 0.9, 1.2], [0.3, 0.6, 0.9, 1.2]]
    zmask = [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 1]]
    zvp("rl_zvp_default", "RL-ZVP: all-correct alpha*H, all-wrong -alpha*(max_k H_k - H) with the max over "
        "the row's masked tokens (a larger padded entropy is ignored), mixed GRPO.", zr, zid, ent, zmask)
    zvp("rl_zvp_alpha_batch", "RL-ZVP with alpha 0.5 and the batch std.", zr, zid, ent, zmask,
        config={"scale": "batch"}, alpha=0.5)

    for name, desc, gaps, mask in (
            ("opsd_basic", "OPSD: Â = g inside the mask, 0 outside.",
             [[0.5, -0.3, 2.0], [-1.0, 0.0, 0.25]], [[1, 1, 0], [1, 1, 1]]),
            ("opsd_padding", "OPSD: NaN/inf padding never read.",
             [[0.5, NAN, INF], [-INF, 0.1, NAN]], [[1, 0, 0], [0, 1, 0]])):
        add(_case(name, desc, "opsd_advantages", {"gaps": gaps, "mask": mask},
                  expected=oracle.opsd_advantages(gaps, mask)))
    return cases


# ----------------------------------------------------------------------------------
# errors.json
# ----------------------------------------------------------------------------------
def error_cases() -> list[dict]:
    ok = {"rewards": [1.0, 0.0], "group_ids": [0, 0], "gaps": [[0.1, 0.2], [0.3, 0.4]],
          "mask": [[1, 1], [1, 1]]}
    cases = []
    add = cases.append

    def adv_err(name, desc, dtypes=None, shapes=None, step=None, **changes):
        add(error_case(name, desc, "cast_advantages", {**ok, **changes}, dtypes=dtypes, shapes=shapes,
                       step=step))

    adv_err("err_nan_in_mask", "NaN in the mask is an error.", mask=[[1, NAN], [1, 1]],
            dtypes={"mask": "float64"})
    adv_err("err_nan_reward", "NaN reward.", rewards=[NAN, 0.0])
    adv_err("err_inf_reward", "Infinite reward.", rewards=[1.0, INF])
    adv_err("err_nan_gap_in_mask", "NaN gap inside the mask.", gaps=[[0.1, NAN], [0.3, 0.4]])
    adv_err("err_gaps_mask_shape", "gaps [2,2] vs mask [2,3].", mask=[[1, 1, 1], [1, 1, 1]])
    adv_err("err_gaps_rows", "gaps has 3 rows for N = 2.", gaps=[[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]],
            mask=[[1, 1], [1, 1], [1, 1]])
    adv_err("err_group_ids_length", "group_ids length 3 for N = 2.", group_ids=[0, 0, 1])
    adv_err("err_group_ids_non_integer", "Non-integer group id 0.5.", group_ids=[0.0, 0.5],
            dtypes={"group_ids": "float64"})
    adv_err("err_mask_value_2", "A mask entry of 2 is neither bool nor 0/1.", mask=[[1, 2], [1, 1]],
            dtypes={"mask": "int64"})
    adv_err("err_empty_batch", "N = 0 (empty batch).", rewards=[], group_ids=[], gaps=[], mask=[],
            shapes={"rewards": [0], "group_ids": [0], "gaps": [0, 2], "mask": [0, 2]})
    adv_err("err_negative_step", "step must be >= 0.", step=-1)
    add(error_case("err_base_nan_reward", "base_advantages: NaN reward.", "base_advantages",
                   {"rewards": [1.0, NAN], "group_ids": [0, 0]}))
    add(error_case("err_token_nan_gap", "token_advantages: NaN gap inside the mask.", "token_advantages",
                   {"base": [1.0, -1.0], "gaps": [[0.1, 0.2], [NAN, 0.4]], "mask": [[1, 1], [1, 1]]}))
    loss_in = {"logp": [[-1.0, -2.0]], "old_logp": [[-1.1, -2.1]], "advantages": [[1.0, -1.0]],
               "mask": [[1, 1]]}
    add(error_case("err_loss_unknown_agg", "policy_loss: unknown aggregation.", "policy_loss", loss_in,
                   params={"agg": "sum"}))
    add(error_case("err_loss_beta_without_ref", "policy_loss: beta > 0 requires ref_logp.", "policy_loss",
                   loss_in, params={"beta": 0.1}))
    add(error_case("err_loss_shape", "policy_loss: old_logp shape differs.", "policy_loss",
                   {**loss_in, "old_logp": [[-1.1, -2.1, -3.0]]}))
    add(error_case("err_loss_nan_in_mask", "policy_loss: NaN logp inside the mask.", "policy_loss",
                   {**loss_in, "logp": [[NAN, -2.0]]}))
    add(error_case("err_grpo_nan_reward", "grpo_advantages: NaN reward.", "grpo_advantages",
                   {"rewards": [NAN, 0.0], "group_ids": [0, 0], "mask": [[1], [1]]}))
    for name, cfg in (("eps_zero", {"eps": 0.0}), ("lam_negative", {"lam": -0.1}),
                      ("decay_negative", {"lam_decay_steps": -1}), ("pos_base_negative", {"zv_pos_base": -1.0}),
                      ("w_clip_reversed", {"w_clip_correct": [1.1, 1.0]}),
                      ("w_clip_wrong_low_negative", {"w_clip_wrong": [-0.1, 1.2]}),
                      ("adv_clip_excludes_zero", {"adv_clip": [0.1, 1.0]}),
                      ("deadband_lo_zero", {"deadband": [0.0, 1.05]}), ("ddof_2", {"std_ddof": 2}),
                      ("scale_unknown", {"scale": "sequence"})):
        add(error_case(f"err_config_{name}", f"CASTConfig rejects {cfg}.", "CASTConfig", {}, config=cfg))
    return cases


# ----------------------------------------------------------------------------------
# Serialisation: deterministic, compact numeric rows, non-finite numbers as strings
# ----------------------------------------------------------------------------------
def _scalar(x: Any) -> str:
    import json
    if isinstance(x, bool) or x is None:
        return json.dumps(x)
    if isinstance(x, float):
        if math.isnan(x):
            return '"nan"'
        if math.isinf(x):
            return '"inf"' if x > 0 else '"-inf"'
        return repr(x)
    if isinstance(x, int):
        return str(x)
    return json.dumps(x, ensure_ascii=False)


def _dump(obj: Any, indent: int = 0) -> str:
    pad = "  " * indent
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f'{pad}  {_scalar(str(k))}: {_dump(v, indent + 1)}' for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, (list, tuple)):
        if all(not isinstance(v, (list, tuple, dict)) for v in obj):
            return "[" + ", ".join(_scalar(v) for v in obj) + "]"
        return "[\n" + ",\n".join(f"{pad}  {_dump(v, indent + 1)}" for v in obj) + "\n" + pad + "]"
    return _scalar(obj)


def build_all() -> dict[str, str]:
    """{file name: file text} for every vector file, deterministic."""
    files = {
        "advantages.json": advantage_cases(),
        "loss.json": loss_cases(),
        "baselines.json": baseline_cases(),
        "errors.json": error_cases(),
    }
    names = [c["name"] for cases in files.values() for c in cases]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise AssertionError(f"duplicate case names: {dupes}")
    return {fname: _dump({"schema_version": SCHEMA_VERSION, "cases": cases}) + "\n"
            for fname, cases in files.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the files on disk, write nothing")
    parser.add_argument("--out", type=Path, default=VECTORS_DIR, help="output directory")
    args = parser.parse_args(argv)
    built = build_all()
    if args.check:
        stale = [f for f, text in built.items()
                 if not (args.out / f).exists() or (args.out / f).read_text(encoding="utf-8") != text]
        for f in stale:
            print(f"stale: {args.out / f}")
        print("vectors up to date" if not stale else f"{len(stale)} file(s) differ; rerun spec/make_vectors.py")
        return 1 if stale else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for fname, text in built.items():
        (args.out / fname).write_text(text, encoding="utf-8")
        n = text.count('"name":')
        print(f"wrote {args.out / fname} ({n} cases)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
