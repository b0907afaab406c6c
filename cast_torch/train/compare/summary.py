"""Pure functions: the runs' metrics records → the comparison's summary, every figure the report shows.

The summary is a JSON-ready dict (seed keys are strings, non-finite numbers ``None``
once written) that ``compare.report`` renders without computing anything:

- per preset and arm: the final greedy eval accuracy (per seed, mean, sample std with
  ddof 1), the mean of the last :data:`TAIL_EVALS` evaluations, the step-0 accuracy and
  step-averaged dynamics (:data:`DYNAMICS_KEYS`);
- per arm other than the baseline: the paired-by-seed delta against it
  (:func:`paired_delta`: per seed, mean ± std, ranges, whether the ranges are disjoint,
  seeds won and tied, the direction of the verdict);
- per CAST arm: teacher-gap statistics for the answer-free and (when logged) the
  privileged teacher, averaged over the steps where the lagged teacher differs from the
  policy, with two-sided sign tests of the per-step AUC against 0.5 (:func:`gap_summary`);
- the setup the runs' ``config.json`` files show, checked to agree apart from method,
  seed, output directory and each arm's one documented difference (:func:`setup_summary`).

:func:`curves` extracts the per-seed series the plots draw.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from .grid import (PLUMBING, CompareSettings, arm_differences, method_specific_differences, reference_config,
                   unexpected_differences)

__all__ = [
    "SCHEMA", "DYNAMICS_KEYS", "GAP_TABLE_KEYS", "TAIL_EVALS", "TEACHERS", "CURVE_KEYS", "TEACHER_CURVE_KEYS",
    "eval_curve", "step_curve", "lagged", "mean_std", "sign_test_p", "arm_stats", "paired_delta", "gap_summary",
    "gap_verdicts", "check_configs", "setup_summary", "timing_summary", "summarize", "curves", "jsonable",
]

SCHEMA = 2
# Keys averaged over steps in the dynamics table.
DYNAMICS_KEYS = ("reward_mean", "frac_all_correct", "frac_all_wrong", "frac_mixed", "entropy", "step_time")
# Gap statistics of a teacher; the privileged teacher's keys carry the prefix "priv_".
GAP_TABLE_KEYS = ("teacher_pos_frac_correct", "teacher_pos_frac_wrong", "gap_mean_correct", "gap_mean_wrong",
                  "seq_gap_auc", "flip_rate_correct", "flip_rate_wrong")
TEACHERS = (("answer_free", ""), ("privileged", "priv_"))
TAIL_EVALS = 3       # the secondary metric: mean accuracy of the last 3 evaluations (less noisy than one)
LAGGED_EPS = 1e-9    # |g| mean above this: the teacher's weights differ from the policy's
ALPHA = 0.05         # the sign tests' level
# Step metrics drawn per arm, and the teacher diagnostics drawn for the first CAST arm.
CURVE_KEYS = ("reward_mean", "frac_all_correct", "frac_all_wrong")
TEACHER_CURVE_KEYS = ("flip_rate_correct", "flip_rate_wrong", "gap_mean_correct", "gap_mean_wrong",
                      "teacher_pos_frac_correct", "teacher_pos_frac_wrong", "seq_gap_auc")

Records = Sequence[Mapping[str, Any]]


def _num(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else float("nan")


def _is_step(r: Mapping[str, Any]) -> bool:
    return int(r["step"]) >= 1 and "reward_mean" in r


def eval_curve(records: Records) -> tuple[np.ndarray, np.ndarray]:
    """``(steps [E], eval_accuracy [E])`` of the records that carry an evaluation, by step."""
    pts = sorted((int(r["step"]), _num(r["eval_accuracy"])) for r in records if "eval_accuracy" in r)
    return np.array([p[0] for p in pts], dtype=np.int64), np.array([p[1] for p in pts], dtype=np.float64)


def step_curve(records: Records, key: str) -> tuple[np.ndarray, np.ndarray]:
    """``(steps [S], values [S])`` of ``key`` over RL-step records (step >= 1); missing → NaN."""
    pts = sorted((int(r["step"]), _num(r.get(key))) for r in records if _is_step(r))
    return np.array([p[0] for p in pts], dtype=np.int64), np.array([p[1] for p in pts], dtype=np.float64)


def lagged(records: Records) -> list[Mapping[str, Any]]:
    """RL-step records where the teacher's weights differ from the policy's (g not all 0)."""
    return [r for r in records if _is_step(r) and _num(r.get("gap_abs_mean")) > LAGGED_EPS]


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample std (ddof 1; 0 for one value) of the finite ``values`` (NaN, NaN: none)."""
    v = np.array([x for x in values if math.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def _nanmean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def sign_test_p(k: int, n: int) -> float:
    """Two-sided exact binomial sign-test p-value of k successes in n fair trials (NaN for n = 0)."""
    if n == 0:
        return float("nan")
    tail = sum(math.comb(n, i) for i in range(0, min(k, n - k) + 1)) / 2.0 ** n
    return min(1.0, 2.0 * tail)


def _ms(values: Sequence[float]) -> dict[str, float]:
    m, s = mean_std(values)
    return {"mean": m, "std": s}


# =========================================================================================
# per arm
# =========================================================================================
def arm_stats(by_seed: Mapping[int, Records], where: str = "runs") -> dict[str, Any]:
    """Final, tail and step-0 accuracy and step-averaged dynamics of one arm's runs ``{seed: records}``."""
    final, start, tail, last_step = {}, {}, {}, {}
    dyn: dict[str, dict[str, float]] = {k: {} for k in DYNAMICS_KEYS}
    for seed, recs in by_seed.items():
        s = str(seed)
        steps, acc = eval_curve(recs)
        if steps.size == 0:
            raise ValueError(f"{where} / seed {seed} has no evaluation")
        final[s] = float(acc[-1])
        last_step[s] = int(steps[-1])
        tail[s] = float(acc[steps >= 1][-TAIL_EVALS:].mean()) if (steps >= 1).any() else float(acc[-1])
        if steps[0] == 0:
            start[s] = float(acc[0])
        for k in DYNAMICS_KEYS:
            dyn[k][s] = _nanmean(step_curve(recs, k)[1])
    m, sd = mean_std(list(final.values()))
    tm, ts = mean_std(list(tail.values()))
    return {
        "final": final, "final_mean": m, "final_std": sd, "final_step": last_step,
        "tail": tail, "tail_mean": tm, "tail_std": ts,
        "start": start, "start_values": sorted({round(v, 6) for v in start.values()}),
        "dynamics": {k: _ms(list(v.values())) for k, v in dyn.items()},
    }


def paired_delta(a: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any]:
    """Paired-by-seed final-accuracy delta of arm stats ``a`` minus ``base`` (:func:`arm_stats`).

    ``direction``: "better" / "worse" / "tied" by the sign of the mean delta (None when
    there is no paired seed); ``ranges_disjoint``: the per-seed ranges do not overlap
    (the difference exceeds the seed spread); ``within_one_std``: |mean| <= std over
    more than one seed.
    """
    seeds = sorted(set(a["final"]) & set(base["final"]), key=int)
    deltas = {s: a["final"][s] - base["final"][s] for s in seeds}
    dm, ds = mean_std(list(deltas.values()))
    a_vals = [a["final"][s] for s in seeds]
    b_vals = [base["final"][s] for s in seeds]
    tm, ts = mean_std([a["tail"][s] - base["tail"][s] for s in seeds])
    nan2 = [float("nan")] * 2
    direction = None if not math.isfinite(dm) else "better" if dm > 0 else "worse" if dm < 0 else "tied"
    return {
        "per_seed": deltas, "mean": dm, "std": ds, "diff_of_means": a["final_mean"] - base["final_mean"],
        "arm_range": [min(a_vals), max(a_vals)] if seeds else nan2,
        "base_range": [min(b_vals), max(b_vals)] if seeds else nan2,
        "ranges_disjoint": bool(seeds) and (min(a_vals) > max(b_vals) or max(a_vals) < min(b_vals)),
        "seeds_better": sum(d > 0 for d in deltas.values()), "seeds_tied": sum(d == 0 for d in deltas.values()),
        "n": len(seeds), "tail_mean": tm, "tail_std": ts, "direction": direction,
        "within_one_std": bool(math.isfinite(ds) and len(seeds) > 1 and abs(dm) <= ds),
    }


def gap_summary(by_seed: Mapping[int, Records]) -> dict[str, Any]:
    """Teacher-gap statistics of one CAST arm's runs, over their lagged-teacher steps.

    Per teacher (answer-free; privileged when its ``priv_*`` keys were logged) and key of
    :data:`GAP_TABLE_KEYS`: the per-seed mean over lagged steps, then mean ± std over seeds;
    sign tests over all lagged steps of all seeds: per-step AUC above vs below 0.5
    (``auc_steps_above`` / ``_below``, ``auc_sign_p``) and teacher-positive fraction higher
    on correct than on wrong completions (``pos_frac_*``). The verdict fields: ``side`` of
    the mean AUC against 0.5, ``alignment`` ("aligned" / "anti-aligned" at the 5% level,
    else "chance"), ``informative`` (some step had a mixed group and a non-zero gap), and
    ``higher_auc``: which teacher's mean AUC is higher ("same" when equal).
    """
    teachers = dict(TEACHERS[:1])
    if any("priv_gap_mean_correct" in r for recs in by_seed.values() for r in recs):
        teachers = dict(TEACHERS)
    lag = {str(s): lagged(recs) for s, recs in by_seed.items()}
    out: dict[str, Any] = {
        "lagged_steps": {s: len(v) for s, v in lag.items()},
        "total_steps": {str(s): sum(1 for r in recs if _is_step(r)) for s, recs in by_seed.items()},
    }
    for name, prefix in teachers.items():
        stats: dict[str, Any] = {}
        for key in GAP_TABLE_KEYS:
            per_seed = {}
            for s, recs in lag.items():
                vals = [v for v in (_num(r.get(prefix + key)) for r in recs) if math.isfinite(v)]
                per_seed[s] = float(np.mean(vals)) if vals else float("nan")
            stats[key] = {"per_seed": per_seed, **_ms(list(per_seed.values()))}
        above = below = pos_higher = pos_total = 0
        for recs in lag.values():
            for r in recs:
                auc = _num(r.get(prefix + "seq_gap_auc"))
                if math.isfinite(auc) and auc != 0.5:
                    above += auc > 0.5
                    below += auc < 0.5
                pc, pw = _num(r.get(prefix + "teacher_pos_frac_correct")), _num(r.get(prefix + "teacher_pos_frac_wrong"))
                if math.isfinite(pc) and math.isfinite(pw) and pc != pw:
                    pos_total += 1
                    pos_higher += pc > pw
        stats.update(auc_steps_above=above, auc_steps_below=below, auc_sign_p=sign_test_p(above, above + below),
                     pos_frac_steps_higher_on_correct=pos_higher, pos_frac_steps=pos_total,
                     pos_frac_sign_p=sign_test_p(pos_higher, pos_total))
        out[name] = stats
    return gap_verdicts(out)


def gap_verdicts(gaps: dict[str, Any]) -> dict[str, Any]:
    """Add the verdict fields of :func:`gap_summary` to its statistics (in place; returns ``gaps``)."""
    gaps["teachers"] = [t for t, _prefix in TEACHERS if t in gaps]
    gaps["lagged_total"] = sum(gaps["lagged_steps"].values())
    gaps["steps_total"] = sum(gaps["total_steps"].values())
    for t in gaps["teachers"]:
        x = gaps[t]
        auc, p = _num(x["seq_gap_auc"]["mean"]), _num(x["auc_sign_p"])
        x["informative"] = bool(math.isfinite(auc) and x["auc_steps_above"] + x["auc_steps_below"] > 0)
        x["side"] = None if not math.isfinite(auc) else "above" if auc > 0.5 else "below" if auc < 0.5 else "at"
        x["alignment"] = ("aligned" if math.isfinite(auc) and auc > 0.5 and p < ALPHA else
                          "anti-aligned" if math.isfinite(auc) and auc < 0.5 and p < ALPHA else "chance")
    gaps["higher_auc"] = None
    if "privileged" in gaps:
        a, p = _num(gaps["answer_free"]["seq_gap_auc"]["mean"]), _num(gaps["privileged"]["seq_gap_auc"]["mean"])
        if math.isfinite(a) and math.isfinite(p):
            gaps["higher_auc"] = "same" if a == p else "answer_free" if a > p else "privileged"
    return gaps


# =========================================================================================
# setup and timing
# =========================================================================================
def check_configs(preset: str, by_arm: Mapping[str, Sequence[Mapping[str, Any]]],
                  settings: CompareSettings) -> tuple[dict[str, Any], dict[str, Any]]:
    """The reference config of ``preset``'s runs and the identical-settings check of their saved
    configs ``{arm: [config.json dicts]}``: ``(reference, {"runs_checked", "differing"})``.

    ``reference`` is the config the others are checked against (the grid's when no run saved
    one); ``differing`` the keys where some run differs beyond method, seed, output directory
    and its arm's documented difference.
    """
    from ..config import get_preset, merge_settings
    grid = settings.grid
    arms = {a.name: a for a in grid.arms}
    ref = reference_config(by_arm, arms)
    if ref is None:
        ref = get_preset(preset, **merge_settings(PLUMBING, grid.settings_for(preset), settings.overrides)).to_dict()
    differing = sorted({k for a, cs in by_arm.items() for c in cs for k in unexpected_differences(ref, c, arms[a])})
    return ref, {"runs_checked": sum(len(cs) for cs in by_arm.values()), "differing": differing,
                 "arms_with_difference": [a for a in arms if a in by_arm and arms[a].layer()]}


def setup_summary(preset: str, ref: Mapping[str, Any], check: Mapping[str, Any], settings: CompareSettings,
                  warm: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
    """What the runs of ``preset`` were: the grid's settings for them, the reference config
    ``ref`` and its ``check`` (:func:`check_configs`), each arm's difference from the preset's
    config (``arm_differences``), the method-specific settings the preset itself sets away
    from the library defaults, the starting model and the evaluation set's resolution.
    """
    from ..config import merge_settings
    grid = settings.grid
    n = int(ref["eval_size"])
    start = ({"kind": "tiny", **dict(warm)} if ref["model"] == "tiny" and warm else
             {"kind": "tiny"} if ref["model"] == "tiny" else {"kind": "path", "model": ref["model"]})
    return {
        "overrides": merge_settings(grid.settings_for(preset), settings.overrides),
        "reference": {k: v for k, v in ref.items() if k not in ("method", "seed", "out")},
        "batch_size": int(ref["prompts_per_step"]) * int(ref["group_size"]), **check,
        "arm_differences": {a.name: arm_differences(ref, a) for a in grid.arms if a.layer()},
        "preset_method_specific": method_specific_differences(ref),
        "start_model": start,
        "eval_size": n, "eval_point": 100.0 / n, "eval_se_half": 100.0 * math.sqrt(0.25 / n),
    }


def timing_summary(timing: Optional[Mapping[str, Any]]) -> Optional[dict[str, Any]]:
    """Wall times of the last invocation in minutes (None without timing information)."""
    if not timing:
        return None
    per_run = timing.get("per_run_seconds", {})
    return {"total_minutes": timing["total_seconds"] / 60, "trained": timing["trained"],
            "reused": timing.get("reused", 0), "runs_timed": len(per_run),
            "train_minutes": sum(per_run.values()) / 60, "jobs": timing.get("jobs"), "threads": timing.get("threads"),
            "machine": timing.get("machine")}


# =========================================================================================
# the whole summary
# =========================================================================================
def summarize(runs: Mapping[str, Mapping[str, Mapping[int, Records]]], settings: CompareSettings,
              configs: Optional[Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]]] = None,
              timing: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
    """Every number the report shows, from ``runs = {preset: {arm: {seed: records}}}``.

    Args:
        runs: the metrics records (``compare.run.load_runs``).
        settings: the comparison's settings (its grid names the arms, baseline and headline).
        configs: ``{preset: {arm: [config.json dicts]}}`` (``compare.run.load_configs``);
            the setup is read from them (else from the grid) and checked to agree.
        timing: what ``compare.run.run_comparison`` returned (optional).
    Returns: the JSON-ready payload ``compare.report.render`` reads (without plots).
    """
    grid = settings.grid
    configs = configs or {}
    warm = (timing or {}).get("warm_start", {})
    presets: dict[str, Any] = {}
    for preset in grid.presets:
        by_arm = runs.get(preset, {})
        ps: dict[str, Any] = {"arms": {a: arm_stats(by_seed, f"runs: {preset} / {a}") for a, by_seed in by_arm.items()}}
        base = ps["arms"].get(grid.baseline)
        ps["deltas"] = {a: paired_delta(m, base) for a, m in ps["arms"].items()
                        if base is not None and a != grid.baseline}
        ps["gap_arms"] = [a.name for a in grid.arms if a.method == "cast" and a.name in by_arm]
        ps["gaps"] = {a: gap_summary(by_arm[a]) for a in ps["gap_arms"]}
        ps["seeds"] = sorted({s for m in ps["arms"].values() for s in m["final"]}, key=int)
        ref, check = check_configs(preset, configs.get(preset, {}), settings)
        ps["setup"] = setup_summary(preset, ref, check, settings, warm.get(preset))
        presets[preset] = ps
    # How the runs were trained: the timing of the invocation that trained them, when there is one.
    jobs, threads = (timing or {}).get("jobs", settings.jobs), (timing or {}).get("threads", settings.threads)
    first = next(iter(presets.values()), None)
    plumbing = {k: (first["setup"]["reference"].get(k, v) if first else v) for k, v in PLUMBING.items()}
    sizes = [ps["setup"]["eval_size"] for ps in presets.values()]
    return {
        "schema": SCHEMA, "grid": grid.to_dict(), "command": settings.command, "out": settings.out,
        "report_dir": settings.report_dir, "overrides": dict(settings.overrides), "jobs": jobs,
        "threads": threads, "plumbing": plumbing, "presets": presets,
        "eval_caveat": None if not sizes else {"eval_size": min(sizes), "point": 100.0 / min(sizes),
                                               "se_half": 100.0 * math.sqrt(0.25 / min(sizes))},
        "timing": dict(timing) if timing else None, "timing_summary": timing_summary(timing),
        "configs": {p: ps["setup"]["reference"] for p, ps in presets.items()},
    }


def curves(runs: Mapping[str, Mapping[str, Mapping[int, Records]]], teacher_arm: Optional[str]) -> dict[str, Any]:
    """The per-seed series the plots draw: ``{preset: {"arms": {arm: {key: {seed: [steps, values]}}},
    "teacher_arm", "teacher": {teacher: {key: {seed: [steps, values]}}}}}``.

    Per arm: ``eval_accuracy`` (evaluation steps, step 0 included) and :data:`CURVE_KEYS`
    (RL steps). For ``teacher_arm``: :data:`TEACHER_CURVE_KEYS` of each teacher over the
    lagged-teacher steps, for the seeds that logged the key. Values are rounded to 6
    significant digits (plots only; every figure of the report comes from the unrounded records).
    """
    out: dict[str, Any] = {}
    as_lists = lambda c: [c[0].tolist(), _round(c[1].tolist())]  # noqa: E731
    for preset, by_arm in runs.items():
        arms = {}
        for arm, by_seed in by_arm.items():
            arms[arm] = {"eval_accuracy": {str(s): as_lists(eval_curve(r)) for s, r in by_seed.items()},
                         **{k: {str(s): as_lists(step_curve(r, k)) for s, r in by_seed.items()} for k in CURVE_KEYS}}
        teacher: dict[str, Any] = {}
        if teacher_arm in by_arm:
            for name, prefix in TEACHERS:
                for key in TEACHER_CURVE_KEYS:
                    for s, recs in by_arm[teacher_arm].items():
                        lag = lagged(recs)
                        if lag and any(prefix + key in r for r in lag):
                            teacher.setdefault(name, {}).setdefault(key, {})[str(s)] = [
                                [int(r["step"]) for r in lag], _round([_num(r.get(prefix + key)) for r in lag])]
        out[preset] = {"arms": arms, "teacher_arm": teacher_arm if teacher_arm in by_arm else None,
                       "teacher": teacher}
    return out


def _round(values: Sequence[float]) -> list[float]:
    """Plotted values to 6 significant digits (far below a pixel; keeps the curves file small)."""
    return [float(f"{v:.6g}") if math.isfinite(v) else v for v in values]


def jsonable(x: Any) -> Any:
    """``x`` with str keys, plain floats and ints, and None for every non-finite float (strict JSON)."""
    if isinstance(x, Mapping):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(float(x)) else None
    if isinstance(x, np.integer):
        return int(x)
    return x
