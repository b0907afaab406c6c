"""The comparison's summary and report on fabricated metrics: the numbers (recomputed here from
the fabricated values), the sections the renderer promises, the exact run settings, the
identical-settings check, and re-rendering from the JSON alone."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from cast_torch.train import compare
from cast_torch.train.compare import CompareSettings, grid_from_mapping, main, parse_args, render, sections, summarize

REPO = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PRESET = "tiny-arithmetic"
FINAL = {"grpo": [0.50, 0.55, 0.60], "rlsd": [0.40, 0.50, 0.45], "cast": [0.60, 0.70, 0.65],
         "cast_contract": [0.45, 0.60, 0.50]}
MID = 0.5       # every run's evaluation at step 5
START = 0.45    # and at step 0
STEPS = 10


def _fabricate(root: Path) -> CompareSettings:
    """Runs of 10 steps for FINAL's arms, with the config.json the runner would save."""
    settings = parse_args(["--quick", "--presets", PRESET, "--methods", ",".join(FINAL), "--out", str(root / "runs"),
                           "--report-dir", str(root / "rep"), "--set", f"max_steps={STEPS}", "--set", "eval_every=5",
                           "--no-train"])
    rng = np.random.default_rng(0)
    for _p, arm, seed, cfg in compare.run_configs(settings):
        d = Path(cfg.out)
        d.mkdir(parents=True)
        (d / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
        recs = [{"step": 0, "eval_accuracy": START}]
        for t in range(1, STEPS + 1):
            r = {"step": t, "reward_mean": 0.4 + 0.02 * t, "frac_all_correct": 0.1, "frac_all_wrong": 0.2,
                 "frac_mixed": 0.7, "flip_rate_correct": 0.1, "flip_rate_wrong": 0.3, "entropy": 0.5,
                 "step_time": 0.2, "gap_abs_mean": 0.0 if t % 5 == 1 else 0.01,
                 "teacher_pos_frac_correct": 0.6, "teacher_pos_frac_wrong": 0.4,
                 "gap_mean_correct": 0.01, "gap_mean_wrong": -0.01, "seq_gap_auc": 0.7 if t % 2 else 0.6}
            if cfg.method == "cast":
                r.update({"priv_teacher_pos_frac_correct": 0.3, "priv_teacher_pos_frac_wrong": 0.35,
                          "priv_gap_mean_correct": -1.0, "priv_gap_mean_wrong": -0.9,
                          "priv_flip_rate_correct": 0.6, "priv_flip_rate_wrong": 0.4,
                          "priv_seq_gap_auc": float(rng.uniform(0.2, 0.45))})
            if t in (5, STEPS):
                r["eval_accuracy"] = FINAL[arm][seed] if t == STEPS else MID
            recs.append(r)
        (d / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in recs))
    return settings


def _section(text: str, heading: str) -> str:
    m = re.search(rf"^## {re.escape(heading)}\b.*?$(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    assert m, f"no section {heading!r}"
    return m.group(1)


def _table(block: str, after: str, keys: int = 1) -> dict:
    """The Markdown table following the line ``after``: {first cell (or first ``keys`` cells): other cells}."""
    lines = block[block.index(after):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0] if keys == 1 else tuple(cells[:keys])] = cells[keys:]
    return rows


def _pm(values) -> str:
    v = 100 * np.asarray(values)
    return f"{v.mean():.1f} ± {v.std(ddof=1):.1f}"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """One fabricated comparison, summarised, plotted and rendered (the tests below only read it)."""
    root = tmp_path_factory.mktemp("compare")
    settings = _fabricate(root)
    path = compare.run(settings, log=lambda _m: None)
    summary = json.loads((root / "rep" / "method-comparison.json").read_text())
    return settings, path, summary


def test_report_has_every_section_it_promises(report):
    _settings, path, summary = report
    text = path.read_text()
    headings = [re.sub(r" \(.*", "", h) for h in re.findall(r"^## (.*)$", text, flags=re.M)]
    assert headings == sections(summary) == ["Verdict", "Setup", PRESET, "Plots", "Caveats", "Exact run settings"]
    pngs = sorted(p.name for p in path.parent.glob("*.png"))
    assert pngs == [f"method-comparison-{k}.png" for k in ("eval-accuracy", "flip-rates", "gaps", "reward",
                                                             "zero-variance")]
    plots = _section(text, "Plots")
    for name in pngs:
        data = (path.parent / name).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 5000
        assert f"]({name})" in plots


def test_report_numbers_are_the_fabricated_ones(report):
    _settings, path, summary = report
    text = path.read_text()
    rows = _table(_section(text, PRESET), "Final greedy eval accuracy")
    g = np.array(FINAL["grpo"])
    for arm, finals in FINAL.items():
        f = np.array(finals)
        delta = "—" if arm == "grpo" else f"{100 * (f - g).mean():+.1f} ± {100 * (f - g).std(ddof=1):.1f}"
        assert rows[arm] == [_pm(f), *(f"{100 * x:.1f}" for x in f), delta, _pm((MID + f) / 2), f"{100 * START:.1f}"]
    dyn = _table(_section(text, PRESET), "Training dynamics")
    assert dyn["cast_contract"][:2] == ["51.0 ± 0.0", "10.0 ± 0.0"]      # reward 0.4 + 0.02 t over t = 1..10
    d = summary["presets"][PRESET]["deltas"]["cast"]
    assert d["per_seed"] == pytest.approx({"0": 0.10, "1": 0.15, "2": 0.05})
    assert (d["direction"], d["ranges_disjoint"], d["seeds_better"], d["n"]) == ("better", False, 3, 3)
    assert d["tail_mean"] == pytest.approx(0.05) and d["tail_std"] == pytest.approx(0.025)
    contract = summary["presets"][PRESET]["deltas"]["cast_contract"]
    assert contract["mean"] == pytest.approx(-1 / 30) and contract["direction"] == "worse"
    verdict = _section(text, "Verdict")
    assert verdict.count(f"**{PRESET}:**") == 2                           # cast, then cast_contract
    assert "+10.0 ± 5.0" in verdict and "-3.3 ± 7.6" in verdict
    gaps = summary["presets"][PRESET]["gaps"]
    assert list(gaps) == ["cast", "cast_contract"]
    assert gaps["cast"]["lagged_steps"] == {"0": 8, "1": 8, "2": 8}       # steps 1 and 6 have g = 0
    af = gaps["cast"]["answer_free"]
    assert af["seq_gap_auc"]["mean"] == pytest.approx(0.65) and af["auc_steps_above"] == 24
    assert af["auc_sign_p"] == pytest.approx(2 / 2 ** 24) and af["alignment"] == "aligned"
    assert gaps["cast"]["privileged"]["seq_gap_auc"]["mean"] < 0.5 and gaps["cast"]["higher_auc"] == "answer_free"
    gap_rows = _table(_section(text, PRESET), "Teacher-gap diagnostics", keys=2)
    assert list(gap_rows) == [(a, t) for a in ("cast", "cast_contract") for t in ("answer-free", "privileged")]
    assert gap_rows[("cast", "answer-free")] == ["60.0 ± 0.0", "40.0 ± 0.0", "0.0100 ± 0.0000", "-0.0100 ± 0.0000",
                                                 "0.650 ± 0.000", "10.0 ± 0.0", "30.0 ± 0.0"]
    assert summary["eval_caveat"] == {"eval_size": 128, "point": 100 / 128, "se_half": pytest.approx(100 * (0.25 / 128) ** 0.5)}


def test_report_shows_each_runs_exact_settings(report):
    settings, path, summary = report
    block = _section(path.read_text(), "Exact run settings")
    shown = [json.loads(b) for b in re.findall(r"```json\n(.*?)\n```", block, flags=re.S)]
    saved = json.loads((Path(settings.out) / PRESET / "grpo" / "seed0" / "config.json").read_text())
    assert shown[0] == {k: v for k, v in saved.items() if k not in ("method", "seed", "out")}
    assert shown[1] == {"cast_contract": {"cast": json.loads(json.dumps(
        json.loads((Path(settings.out) / PRESET / "cast_contract" / "seed1" / "config.json").read_text())["cast"]))}}
    setup = summary["presets"][PRESET]["setup"]
    assert (setup["runs_checked"], setup["differing"], setup["arms_with_difference"]) == (12, [], ["cast_contract"])
    assert setup["arm_differences"] == {"cast_contract": [
        {"key": "cast.deadband", "value": [1.0, 1.0], "preset": [0.95, 1.05]}]}
    assert re.search(r"Checked from the 12 runs' `config.json`: their settings are identical", path.read_text())


def test_a_run_that_differs_beyond_its_arm_is_reported(tmp_path):
    settings = _fabricate(tmp_path)
    f = Path(settings.out) / PRESET / "cast_contract" / "seed2" / "config.json"
    f.write_text(json.dumps({**json.loads(f.read_text()), "temperature": 0.5}))
    g = Path(settings.out) / PRESET / "cast_contract" / "seed0" / "config.json"
    plain_cast = json.loads((Path(settings.out) / PRESET / "cast" / "seed0" / "config.json").read_text())["cast"]
    g.write_text(json.dumps({**json.loads(g.read_text()), "cast": plain_cast}))   # the arm lost its difference
    grid = settings.grid
    arms = [a.name for a in grid.arms]
    runs = compare.load_runs(settings.out, grid.presets, arms, grid.seeds)
    summary = summarize(runs, settings, compare.load_configs(settings.out, grid.presets, arms, grid.seeds))
    setup = summary["presets"][PRESET]["setup"]
    assert setup["differing"] == ["cast", "temperature"] and setup["runs_checked"] == 12
    text = render(json.loads(json.dumps(compare.summary.jsonable({**summary, "plots": [],
                                                                  "plot_note": {"window": 5, "min_steps": 15}}))))
    assert "**NOT identical**" in text and "(differing: `cast`, `temperature`)" in text


def test_report_only_re_renders_from_the_json_alone(report, tmp_path, capsys):
    import shutil
    _settings, original, _summary = report
    before = original.read_text()
    # a copy of the report folder alone, without the runs: --report-only reads the JSON (and the curves)
    rep = str(tmp_path / "rep")
    shutil.copytree(original.parent, rep)
    path = Path(rep) / original.name
    path.unlink()
    assert main(["--report-only", "--report-dir", rep]) == 0
    assert path.read_text() == before
    (path.parent / "method-comparison-curves.json").unlink()
    (path.parent / "method-comparison-gaps.png").unlink()
    assert main(["--report-only", "--report-dir", rep]) == 0
    after = path.read_text()
    assert "method-comparison-gaps.png" not in after and "](method-comparison-reward.png)" in after
    (path.parent / "method-comparison.json").write_text(json.dumps({"schema": 1}))
    with pytest.raises(SystemExit):
        main(["--report-only", "--report-dir", rep])
    assert "renders schema 2" in capsys.readouterr().err


def test_a_losing_cast_is_reported_as_such(tmp_path):
    grid = grid_from_mapping({"name": "g", "presets": ["tiny-multistep"], "seeds": [0, 1, 2],
                              "arms": [{"name": "grpo"}, {"name": "cast"}], "privileged": False})
    runs = {"tiny-multistep": {
        arm: {s: [{"step": 0, "eval_accuracy": 0.3}, {"step": 1, "reward_mean": 0.5, "eval_accuracy": a}]
              for s, a in enumerate(accs)}
        for arm, accs in (("grpo", [0.80, 0.82, 0.84]), ("cast", [0.70, 0.71, 0.72]))}}
    s = summarize(runs, CompareSettings(grid=grid, out=str(tmp_path), report_dir=str(tmp_path)))
    d = s["presets"]["tiny-multistep"]["deltas"]["cast"]
    assert d["mean"] == pytest.approx(-0.11) and d["ranges_disjoint"] is True and d["seeds_better"] == 0
    assert d["direction"] == "worse" and d["within_one_std"] is False
    s = json.loads(json.dumps(compare.summary.jsonable({**s, "plots": [], "plot_note": {"window": 5, "min_steps": 15}})))
    verdict = _section(render(s), "Verdict")
    assert "**not**" in verdict and "11.0" in verdict and "-11.0 ± 1.0" in verdict


COMMITTED = sorted(str(p.parent.relative_to(REPO)) for p in REPO.glob("reports/**/method-comparison.json"))


def test_the_committed_reports_are_found():
    assert {"reports", "reports/quick"} <= set(COMMITTED)


@pytest.mark.parametrize("folder", COMMITTED)
def test_committed_reports_are_rendered_from_their_json(folder):
    """The committed Markdown is exactly what the renderer makes of the committed JSON."""
    summary = json.loads((REPO / folder / "method-comparison.json").read_text())
    assert render(summary) == (REPO / folder / "method-comparison.md").read_text()
    for p in summary["plots"]:
        assert (REPO / folder / p["file"]).read_bytes()[:8] == PNG_MAGIC
