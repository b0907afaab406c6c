"""A run folder is the user's data: every bad input is one line before the model loads and
before anything in --out changes; resume never runs code from the folder and never changes
the run silently. One test per row of issue 13's table, through the real ``cast-train`` entry
point (``cli.main``), each asserting the message and that nothing in --out changed."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cast_torch.train import read_metrics
from cast_torch.train.cli import main

REPO = Path(__file__).resolve().parents[2]

# A fast run: random 1-layer tiny model (no warm start), 2 prompts x 4 completions.
FAST = """
model = "tiny"
data = "arithmetic"
max_operand = 9
num_problems = 40
eval_size = 4
tiny_hidden_size = 32
tiny_layers = 1
tiny_heads = 2
warm_start_steps = 0
prompts_per_step = 2
group_size = 4
max_new_tokens = 6
max_steps = 2
lr = 0.001
eval_every = 0
save_every = 1
tensorboard = true
progress = false
num_threads = 1
score_chunk_size = 3
"""


def snapshot(path: Path) -> dict[str, str]:
    """Every file under ``path`` (hidden ones too) with its sha256: what 'unchanged' means."""
    if not path.exists():
        return {}
    if path.is_file():
        return {".": hashlib.sha256(path.read_bytes()).hexdigest()}
    out = {}
    for p in sorted(path.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(path))] = hashlib.sha256(p.read_bytes()).hexdigest()
        elif p.is_dir() or p.is_symlink():
            out[str(p.relative_to(path)) + "/"] = "dir"
    return out


@pytest.fixture(scope="module")
def cfg_file(tmp_path_factory):
    base = tmp_path_factory.mktemp("cfg")
    f = base / "fast.toml"
    f.write_text(FAST + f'cache_dir = "{base / "cache"}"\n')
    return f


@pytest.fixture
def run(capsys):
    """``run(args) -> (exit code, stderr)`` through the real CLI entry point."""
    def call(args):
        code = main([str(a) for a in args])
        return code, capsys.readouterr().err
    return call


@pytest.fixture
def no_model_load(monkeypatch):
    """Fail the test if the trainer reaches the model load (validation must come first)."""
    import cast_torch.train.trainer as trainer_mod

    def refuse(*a, **k):
        raise AssertionError("the model was loaded before the input was validated")
    monkeypatch.setattr(trainer_mod, "load_policy", refuse)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A local transformers model folder (the tiny architecture, random weights)."""
    from cast_torch.train.tiny import make_tiny_model, make_tokenizer
    path = tmp_path_factory.mktemp("model") / "tiny-llama"
    make_tiny_model(make_tokenizer(path), hidden_size=32, num_layers=1, num_heads=2).save_pretrained(str(path))
    return path


@pytest.fixture(scope="module")
def finished_template(tmp_path_factory, cfg_file):
    """A finished 2-step run with checkpoints, metrics, tb/ and plots/ (trained once per module)."""
    out = tmp_path_factory.mktemp("template") / "finished"
    assert main(["--config", str(cfg_file), "--out", str(out)]) == 0
    assert main(["plot", str(out)]) == 0
    for name in ("config.json", "metrics.jsonl", "checkpoints", "tb", "plots"):
        assert (out / name).exists(), name
    return out


@pytest.fixture
def finished(finished_template, tmp_path):
    """This test's own copy of the finished run (a moved run folder is the same run)."""
    out = tmp_path / "finished"
    shutil.copytree(finished_template, out, symlinks=True)
    return out


def one_line_error(code, err, *needles):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("cast-train: error: ")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


# -- row 1: --overwrite with a bad --model on a finished run --------------------------------------
def test_overwrite_with_a_bad_model_changes_nothing(finished, cfg_file, run, tmp_path, no_model_load):
    empty = tmp_path / "empty"
    empty.mkdir()
    before = snapshot(finished)
    code, err = run(["--config", cfg_file, "--out", finished, "--overwrite", "--model", empty])
    one_line_error(code, err, f"TrainConfig.model: {str(empty)!r} has no config.json")
    assert snapshot(finished) == before


def test_overwrite_keeps_the_old_run_until_the_new_one_has_a_checkpoint(finished, cfg_file, run, monkeypatch):
    before = snapshot(finished)
    import cast_torch.train.trainer as trainer_mod

    def killed(*a, **k):
        raise KeyboardInterrupt("killed before the first checkpoint")
    monkeypatch.setattr(trainer_mod, "save_checkpoint", killed)
    code, err = run(["--config", cfg_file, "--out", finished, "--overwrite"])
    assert code == 130 and "no checkpoint was written yet" in err
    aside = [p for p in finished.iterdir() if p.name.startswith(".replaced-")]
    assert len(aside) == 1 and snapshot(aside[0]) == before       # the old run, whole, byte for byte
    monkeypatch.undo()
    code, err = run(["--config", cfg_file, "--out", finished, "--overwrite"])
    assert code == 0, err
    assert [p.name for p in finished.iterdir() if p.name.startswith(".replaced-")] == [aside[0].name]
    # ^ the interrupted attempt's aside is the user's to delete; this run's own aside is gone
    assert [r["step"] for r in read_metrics(finished)] == [1, 2]


def test_a_run_that_died_during_its_start_is_replaced_without_overwrite(tmp_path, cfg_file, run, monkeypatch):
    out = tmp_path / "o"
    import cast_torch.train.trainer as trainer_mod

    def boom(self, *a, **k):
        raise KeyboardInterrupt("killed during the first step")
    monkeypatch.setattr(trainer_mod.Trainer, "step", boom)
    assert run(["--config", cfg_file, "--out", out])[0] == 130
    assert (out / "config.json").is_file() and (out / "metrics.jsonl").is_file()   # a run, never half-made
    monkeypatch.undo()
    code, err = run(["--config", cfg_file, "--out", out])
    assert code == 0, err


# -- row 2: a folder that merely holds plots/ ---------------------------------------------------------
def test_a_folder_with_only_plots_is_not_a_run(tmp_path, cfg_file, run, no_model_load):
    out = tmp_path / "mine"
    (out / "plots").mkdir(parents=True)
    (out / "plots" / "figure.png").write_bytes(b"\x89PNG my figure")
    (out / "notes.txt").write_text("my notes")
    before = snapshot(out)
    code, err = run(["--config", cfg_file, "--out", out, "--overwrite"])
    one_line_error(code, err, "holds plots/ but is not a cast-train run", "even with --overwrite")
    assert snapshot(out) == before
    code, err = run(["--config", cfg_file, "--out", out])
    one_line_error(code, err, "holds plots/ but is not a cast-train run")
    assert snapshot(out) == before


# -- row 3: a run folder received from someone else ---------------------------------------------------
class _Payload:
    """Unpickling this runs code: it creates the marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_a_planted_pickle_is_refused_and_runs_no_code(finished, cfg_file, run, tmp_path, writer, no_model_load):
    import torch
    marker = tmp_path / "PWNED"
    step = finished / "checkpoints" / "step-2"
    for name in ("trainer_state.json", "trainer_state.safetensors"):
        (step / name).unlink()                  # only a (crafted) legacy state is left
    payload = {"step": 2, "optimizer": torch.zeros(2), "config": _Payload(str(marker))}
    if writer == "pickle":
        with open(step / "trainer_state.pt", "wb") as f:
            pickle.dump(payload, f)
    else:
        torch.save(payload, step / "trainer_state.pt")
    before = snapshot(finished)
    code, err = run(["--out", finished, "--resume"])
    one_line_error(code, err, "resume: refused", "trainer_state.pt", "never runs code from a run folder")
    assert not marker.exists()
    assert snapshot(finished) == before


def test_a_pickle_beside_a_real_state_is_never_read(finished, cfg_file, run, tmp_path):
    marker = tmp_path / "PWNED"
    with open(finished / "checkpoints" / "step-2" / "trainer_state.pt", "wb") as f:
        pickle.dump(_Payload(str(marker)), f)
    code, err = run(["--out", finished, "--resume", "--max-steps", "3"])
    assert code == 0, err
    assert not marker.exists()


@pytest.mark.parametrize("pointer", ["../../elsewhere", "/etc", "step-2/../../x"])
def test_the_latest_pointer_must_stay_inside_checkpoints(finished, run, pointer, no_model_load):
    (finished / "checkpoints" / "latest").write_text(pointer + "\n")
    before = snapshot(finished)
    code, err = run(["--out", finished, "--resume"])
    one_line_error(code, err, "which is not a checkpoint directory inside")
    assert snapshot(finished) == before


def test_a_checkpoint_symlinked_out_of_the_run_is_refused(finished, run, tmp_path, no_model_load):
    ckpt = finished / "checkpoints"
    elsewhere = tmp_path / "elsewhere"
    shutil.move(str(ckpt / "step-2"), str(elsewhere))
    os.symlink(elsewhere, ckpt / "step-2")
    before = snapshot(finished)
    code, err = run(["--out", finished, "--resume"])
    one_line_error(code, err, "not a checkpoint directory inside")
    assert snapshot(finished) == before


def test_a_damaged_state_is_a_clear_error(finished, run):
    (finished / "checkpoints" / "step-2" / "trainer_state.safetensors").write_bytes(b"\x00" * 16)
    before = snapshot(finished)
    code, err = run(["--out", finished, "--resume", "--max-steps", "3"])
    one_line_error(code, err, "trainer_state.safetensors", "cannot be read")
    assert snapshot(finished) == before


# -- row 4: resume means the same run -----------------------------------------------------------------
@pytest.mark.parametrize("args,needle", [
    (["--set", "lr=0.01"], "lr 0.001 -> 0.01"),
    (["--set", "group_size=2"], "group_size 4 -> 2"),
    (["--set", "cast.lam=0.3"], "cast.lam 0.5 -> 0.3"),
    (["--set", "temperature=0.7"], "temperature 1.0 -> 0.7"),
])
def test_resume_refuses_changed_settings(finished, run, args, needle, no_model_load):
    before = snapshot(finished)
    code, err = run(["--out", finished, "--resume", *args])
    line = one_line_error(code, err, "resume: settings differ", needle, "--allow-config-change")
    assert "max_steps, eval_every" in line
    assert snapshot(finished) == before


def test_resume_names_every_changed_field_in_one_line(finished, run, no_model_load):
    code, err = run(["--out", finished, "--resume", "--set", "lr=0.01", "--set", "group_size=2"])
    one_line_error(code, err, "lr 0.001 -> 0.01", "group_size 4 -> 2")


@pytest.mark.parametrize("args,needle", [
    (["--method", "grpo"], "self-teacher 'snapshot' -> 'none"),
    (["--set", "lora=true"], "lora False -> True"),
    (["--seed", "5"], "seed 0 -> 5"),
    (["--set", "teacher=ema"], "self-teacher 'snapshot' -> 'ema'"),
])
@pytest.mark.parametrize("expert", [False, True])
def test_some_settings_cannot_change_even_with_the_expert_flag(finished, run, args, needle, expert, no_model_load):
    before = snapshot(finished)
    code, err = run(["--out", finished, "--resume", *args] + (["--allow-config-change"] if expert else []))
    one_line_error(code, err, needle, "cannot change when resuming")
    assert snapshot(finished) == before


def test_allowed_changes_resume_and_are_recorded(finished, run):
    code, err = run(["--out", finished, "--resume", "--max-steps", "3", "--set", "save_every=0"])
    assert code == 0, err
    cfg = json.loads((finished / "config.json").read_text())
    assert cfg["max_steps"] == 3 and cfg["save_every"] == 0
    assert cfg["changed_on_resume"] == [{"step": 2, "field": "max_steps", "old": 2, "new": 3},
                                        {"step": 2, "field": "save_every", "old": 1, "new": 0}]
    assert [r["step"] for r in read_metrics(finished)] == [1, 2, 3]


def test_the_expert_flag_trains_with_the_new_value_and_config_json_says_so(finished, run):
    code, err = run(["--out", finished, "--resume", "--max-steps", "3", "--set", "lr=0.01",
                     "--allow-config-change"])
    assert code == 0, err
    cfg = json.loads((finished / "config.json").read_text())
    assert cfg["lr"] == 0.01 and {"step": 2, "field": "lr", "old": 0.001, "new": 0.01} in cfg["changed_on_resume"]
    lines = read_metrics(finished)
    assert lines[1]["lr"] == pytest.approx(0.001) and lines[2]["lr"] == pytest.approx(0.01)   # what ran


# -- row 5: a kill during a metrics write -------------------------------------------------------------
def test_a_torn_last_metrics_line_is_dropped_on_resume(finished, run):
    with open(finished / "metrics.jsonl", "a") as f:
        f.write('{"step": 3, "reward_mean": 0.1')          # the kill: no closing brace, no newline
    code, err = run(["--out", finished, "--resume", "--max-steps", "3"])
    assert code == 0, err
    assert [r["step"] for r in read_metrics(finished)] == [1, 2, 3]


def test_only_the_last_line_may_be_torn(finished, run, no_model_load):
    lines = (finished / "metrics.jsonl").read_text().splitlines()
    (finished / "metrics.jsonl").write_text(lines[0][:-5] + "\n" + "\n".join(lines[1:]) + "\n")
    before = snapshot(finished)
    code, err = run(["--out", finished, "--resume", "--max-steps", "3"])
    assert code == 2 and "line 1 is not JSON" in err
    assert snapshot(finished) == before


# -- row 6: --out is a file / a read-only folder -----------------------------------------------------
def test_out_is_a_file(tmp_path, cfg_file, run, no_model_load):
    out = tmp_path / "results.txt"
    out.write_text("my results")
    code, err = run(["--config", cfg_file, "--out", out])
    one_line_error(code, err, f"out: {str(out)!r} is a file, not a folder")
    assert out.read_text() == "my results"
    code, err = run(["--config", cfg_file, "--out", out / "sub"])
    one_line_error(code, err, f"{str(out)!r} is a file")


def test_out_is_a_read_only_folder(tmp_path, cfg_file):
    """A folder this process cannot write. Root bypasses permission bits, so as root the CLI runs
    with its capabilities dropped (setpriv), which makes a 0o555 folder read-only to it."""
    prefix = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: cannot make a folder read-only to this process")
        prefix = ["setpriv", "--inh-caps=-all", "--bounding-set=-all"]
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "keep.txt").write_text("mine")
    os.chmod(ro, 0o555)
    try:
        for out in (ro, ro / "new"):
            proc = subprocess.run(prefix + [sys.executable, "-m", "cast_torch.train.cli", "--config", str(cfg_file),
                                            "--out", str(out)], capture_output=True, text=True, timeout=300,
                                  env={**os.environ, "PYTHONPATH": str(REPO)})
            one_line_error(proc.returncode, proc.stderr, "is not writable")
        assert sorted(p.name for p in ro.iterdir()) == ["keep.txt"]
    finally:
        os.chmod(ro, 0o755)


# -- row 7: a corrupt or empty model folder ------------------------------------------------------------
def test_model_folder_problems_are_one_line(tmp_path, cfg_file, run, model_dir, no_model_load):
    good = model_dir
    out = tmp_path / "o"

    def variant(name, damage):
        p = tmp_path / name
        shutil.copytree(good, p)
        damage(p)
        return p

    cases = [
        (variant("corrupt-config", lambda p: (p / "config.json").write_text('{"model_type": "llama",')),
         "config.json is not valid JSON"),
        (variant("unknown-arch", lambda p: (p / "config.json").write_text('{"model_type": "nonesuch"}')),
         "config.json cannot be used by transformers"),
        (variant("no-weights", lambda p: (p / "model.safetensors").unlink()), "has no weights"),
        (variant("torn-weights", lambda p: (p / "model.safetensors").write_bytes(
            (p / "model.safetensors").read_bytes()[:1000])), "model.safetensors is not a readable safetensors file"),
        (variant("no-tokenizer", lambda p: (p / "tokenizer.json").unlink()), "has no tokenizer files"),
        (tmp_path / "missing", "does not exist"),
    ]
    (tmp_path / "empty").mkdir()
    cases.append((tmp_path / "empty", "has no config.json"))
    for path, needle in cases:
        code, err = run(["--config", cfg_file, "--out", out, "--model", path])
        one_line_error(code, err, f"TrainConfig.model: {str(path)!r}", needle)
        assert not out.exists()


# -- row 8: bad data files -------------------------------------------------------------------------------
@pytest.mark.parametrize("content,needle", [
    (b"", "holds no problems"),
    (b"\n\n", "holds no problems"),
    (b'{"prompt": "1+1=", "answer": "2"}\n{"prompt": "2+2=", "answer": \n', "line 2 is not valid JSON"),
    (b'{"prompt": "1+1=", "answer": "2"}\n{"prompt": "2+2=", "answer": "4"}\n{"prompt": "\xff\xfe", "answer": "0"}\n',
     "line 3 is not UTF-8"),
    (b'{"prompt": "1+1=", "answer": "2"}\n{"question": "2+2=", "answer": "4"}\n', "line 2 has no 'prompt' column"),
    (b'{"prompt": "1+1=", "answer": "2"}\n[1, 2]\n', "line 2 is a list"),
])
def test_bad_data_files_are_one_line_naming_the_file(tmp_path, cfg_file, run, model_dir, content, needle,
                                                     no_model_load):
    data = tmp_path / "problems.jsonl"
    data.write_bytes(content)
    out = tmp_path / "o"
    code, err = run(["--config", cfg_file, "--out", out, "--model", model_dir, "--set", f"data={json.dumps(str(data))}",
                     "--set", "eval_size=1"])
    one_line_error(code, err, f"TrainConfig.data: {str(data)!r}", needle)
    assert not out.exists()


def test_bad_csv_is_translated(tmp_path, cfg_file, run, model_dir, no_model_load):
    data = tmp_path / "problems.csv"
    data.write_bytes(b"prompt,answer\n1+1=,2\n\xff\xfe,3\n")
    code, err = run(["--config", cfg_file, "--out", tmp_path / "o", "--model", model_dir,
                     "--set", f"data={json.dumps(str(data))}", "--set", "eval_size=1"])
    one_line_error(code, err, f"TrainConfig.data: {str(data)!r}", "cannot be read as csv")
    assert not (tmp_path / "o").exists()


# -- row 9: fewer distinct prompts than a step needs ----------------------------------------------------
def test_too_few_distinct_prompts_for_a_step(tmp_path, cfg_file, run, model_dir, no_model_load):
    data = tmp_path / "two.jsonl"
    data.write_text('{"prompt": "1+1=", "answer": "2"}\n{"prompt": "2+2=", "answer": "4"}\n')
    evals = tmp_path / "eval.jsonl"
    evals.write_text('{"prompt": "3+3=", "answer": "6"}\n')
    code, err = run(["--config", cfg_file, "--out", tmp_path / "o", "--model", model_dir,
                     "--set", f"data={json.dumps(str(data))}", "--set", f"eval_data={json.dumps(str(evals))}",
                     "--set", "prompts_per_step=8"])
    one_line_error(code, err, "TrainConfig.prompts_per_step: a step needs 8 distinct prompts", "has 2 distinct")
    assert not (tmp_path / "o").exists()


# -- rows 10-12: one checker per concept, at config time -------------------------------------------------
def test_group_of_one_is_refused_with_the_reason(tmp_path, cfg_file, run):
    code, err = run(["--config", cfg_file, "--out", tmp_path / "o", "--method", "grpo", "--set", "group_size=1"])
    one_line_error(code, err, "TrainConfig.group_size: must be >= 2", "no relative advantage")
    assert not (tmp_path / "o").exists()


def test_trl_config_uses_the_same_group_size_rule(tmp_path):
    pytest.importorskip("trl")
    from cast_torch.integrations.trl import CASTGRPOConfig
    with pytest.raises(ValueError, match="CASTGRPOConfig.num_generations: must be >= 2.*no relative advantage"):
        CASTGRPOConfig(output_dir=str(tmp_path), num_generations=1, per_device_train_batch_size=2, report_to=[])


@pytest.mark.parametrize("template", ["{prompt:>200000000}", "{prompt!r}", "{prompt.__class__}", "{prompt[0]}",
                                      "{} {prompt}"])
def test_teacher_templates_allow_plain_fields_only(tmp_path, cfg_file, run, template):
    code, err = run(["--config", cfg_file, "--out", tmp_path / "o", "--set", f"teacher_context={json.dumps(template)}"])
    one_line_error(code, err, "TrainConfig.teacher_context: field", "is not allowed")
    assert not (tmp_path / "o").exists()
    pytest.importorskip("trl")
    from cast_torch.integrations.trl import CASTGRPOConfig
    with pytest.raises(ValueError, match="CASTGRPOConfig.cast_teacher_template: field .* is not allowed"):
        CASTGRPOConfig(output_dir=str(tmp_path), cast_teacher_template=template, report_to=[])


def test_rlsd_weight_clip_fails_at_config_time(tmp_path, cfg_file, run):
    """Row 11: the RLSD eps_w check is cast_core's (issue 14), called by TrainConfig: nothing is made."""
    code, err = run(["--config", cfg_file, "--out", tmp_path / "o", "--method", "rlsd", "--set", "rlsd_eps_w=2.0"])
    one_line_error(code, err, "TrainConfig.rlsd_eps_w")
    assert not (tmp_path / "o").exists()
