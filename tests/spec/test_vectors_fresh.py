"""spec/vectors/*.json must be exactly what spec/make_vectors.py generates (no drift),
and must cover what the spec promises to pin down."""

import json
from collections import Counter

from _spec_load import SPEC, load as _load


make_vectors = _load("make_vectors")


def test_vectors_on_disk_equal_regenerated():
    built = make_vectors.build_all()
    on_disk = sorted(p.name for p in (SPEC / "vectors").glob("*.json"))
    assert on_disk == sorted(built), "vector files on disk differ from the generator's set"
    for name, text in built.items():
        assert (SPEC / "vectors" / name).read_text(encoding="utf-8") == text, (
            f"spec/vectors/{name} is stale: run `python spec/make_vectors.py`")


def test_a_fresh_process_writes_the_committed_vectors(tmp_path):
    """Generation depends on nothing of the process: another interpreter, with another hash
    seed, writing through the script's own file path, produces the committed bytes."""
    import os
    import subprocess
    import sys
    env = {**os.environ, "PYTHONHASHSEED": "2718"}
    done = subprocess.run([sys.executable, str(SPEC / "make_vectors.py"), "--out", str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    fresh = sorted(p.name for p in tmp_path.glob("*.json"))
    assert fresh == sorted(p.name for p in (SPEC / "vectors").glob("*.json"))
    for name in fresh:
        assert (tmp_path / name).read_bytes() == (SPEC / "vectors" / name).read_bytes(), name


def _cases():
    out = []
    for p in sorted((SPEC / "vectors").glob("*.json")):
        data = json.loads(p.read_text(encoding="utf-8"))
        assert data["schema_version"] == 1
        out.extend(data["cases"])
    return out


def test_vector_coverage_and_shape():
    cases = _cases()
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    by_fn = Counter(c["function"] for c in cases if "expect_error" not in c)
    assert by_fn["cast_advantages"] >= 30
    for fn in ("base_advantages", "token_advantages", "policy_loss", "grpo_advantages",
               "rlsd_advantages", "rl_zvp_advantages", "opsd_advantages"):
        assert by_fn[fn] >= 1, fn
    for c in cases:
        assert {"name", "description", "function", "inputs"} <= set(c)
        if "expect_error" in c:
            assert c["expect_error"] == "ValueError"
        else:
            assert c["atol"] == 1e-12 and c["rtol"] == 1e-9
    must_have = {"worked_example_group_1100", "worked_example_group_1000", "worked_example_deadband",
                 "worked_example_decay_step150", "positive_side_down_flip", "negative_side_up_flip",
                 "zero_base_row", "inf_gaps", "nan_inf_padding", "T_zero", "one_member_groups",
                 "err_nan_in_mask", "err_nan_reward", "err_gaps_mask_shape", "err_group_ids_non_integer",
                 "err_empty_batch"}
    assert must_have <= set(names)
    aggs = {c.get("params", {}).get("agg", "token-mean") for c in cases if c["function"] == "policy_loss" and "expect_error" not in c}
    assert aggs == {"token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"}


def test_non_finite_inputs_are_strings():
    """Strict JSON: no NaN/Infinity literals; non-finite inputs are the strings "nan", "inf", "-inf"."""
    def refuse(token):
        raise AssertionError(f"non-standard JSON constant {token}")

    seen = set()
    for name in make_vectors.build_all():
        text = (SPEC / "vectors" / name).read_text(encoding="utf-8")
        json.loads(text, parse_constant=refuse)
        seen |= {s for s in ('"nan"', '"inf"', '"-inf"') if s in text}
    assert seen == {'"nan"', '"inf"', '"-inf"'}


def test_check_mode_reports_up_to_date(capsys):
    assert make_vectors.main(["--check"]) == 0
    assert "up to date" in capsys.readouterr().out
