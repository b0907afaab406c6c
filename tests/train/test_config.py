"""TrainConfig validation, config files, presets and the CLI's configuration errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from cast_core import CASTConfig
from cast_torch.train import PRESETS, TrainConfig, config_from_mapping, get_preset
from cast_torch.train.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_every_field_has_help():
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata.get("help"), f.name


@pytest.mark.parametrize("field,value,match", [
    ("method", "ppo", "TrainConfig.method"),
    ("teacher", "oracle", "TrainConfig.teacher"),
    ("group_size", 0, "TrainConfig.group_size"),
    ("temperature", 0.0, "TrainConfig.temperature"),
    ("top_p", 1.5, "TrainConfig.top_p"),
    ("lr", -1.0, "TrainConfig.lr"),
    ("loss_agg", "sum", "TrainConfig.loss_agg"),
    ("teacher_ema_decay", 1.5, "TrainConfig.teacher_ema_decay"),
    ("num_minibatches", 3, "TrainConfig.num_minibatches"),   # 64 completions do not split in 3
    ("clip_low", 1.0, "TrainConfig.clip_low"),
    ("lr", float("nan"), "TrainConfig.lr"),
    # RLSD / RL-ZVP scalars: cast_core's checks, so a value the estimator refuses fails here
    ("rlsd_eps_w", 1.5, r"TrainConfig.rlsd_eps_w: must be <= 1"),
    ("rlsd_lam", -0.5, r"TrainConfig.rlsd_lam: must be a finite number >= 0"),
    ("rlsd_lam_decay_steps", -1, r"TrainConfig.rlsd_lam_decay_steps: must be an int >= 0"),
    ("zvp_alpha", -0.1, r"TrainConfig.zvp_alpha: must be a finite number >= 0"),
])
def test_bad_values_name_the_field(field, value, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{field: value})


def test_wrong_types_name_the_field():
    with pytest.raises(TypeError, match="TrainConfig.max_steps"):
        TrainConfig(max_steps="10")
    with pytest.raises(TypeError, match="TrainConfig.lora"):
        TrainConfig(lora="yes")


def test_unknown_keys_are_errors_naming_the_key():
    with pytest.raises(ValueError, match="learning_rate"):
        config_from_mapping({"learning_rate": 1e-3})
    with pytest.raises(ValueError, match="lambda"):
        config_from_mapping({"cast": {"lambda": 0.3}})
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("huge")


def test_privileged_teacher_refused_unless_allowed():
    with pytest.raises(ValueError, match="allow_privileged_teacher"):
        TrainConfig(teacher_context="Answer: {answer}\n{prompt}")
    cfg = TrainConfig(teacher_context="Answer: {answer}\n{prompt}", allow_privileged_teacher=True)
    assert cfg.allow_privileged_teacher
    TrainConfig(teacher_context="Think carefully.\n{prompt}")       # answer-free template is fine
    with pytest.raises(ValueError, match="prompt"):
        TrainConfig(teacher_context="no slot here")
    with pytest.raises(ValueError, match="unknown slot"):
        TrainConfig(teacher_context="{prompt} {solution}")


def test_toml_and_yaml_map_onto_the_config(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text('preset = "tiny-arithmetic"\nmethod = "grpo"\nmax_steps = 7\n[cast]\nlam = 0.25\n')
    cfg = TrainConfig.from_file(toml)
    assert (cfg.method, cfg.max_steps, cfg.cast.lam) == ("grpo", 7, 0.25)
    assert cfg.group_size == PRESETS["tiny-arithmetic"]["group_size"]
    yaml = tmp_path / "run.yaml"
    yaml.write_text("method: rlsd\ncast:\n  deadband: [0.95, 1.05]\n")
    cfg = TrainConfig.from_file(yaml)
    assert cfg.method == "rlsd" and cfg.cast.deadband == (0.95, 1.05)
    bad = tmp_path / "bad.toml"
    bad.write_text("max_stepz = 3\n")
    with pytest.raises(ValueError, match="max_stepz"):
        TrainConfig.from_file(bad)


def test_shipped_config_files_equal_the_presets():
    for name in ("tiny-arithmetic", "tiny-multistep", "smollm2"):
        path = REPO / "configs" / f"{name}.toml"
        assert TrainConfig.from_file(path) == get_preset(name), name


def test_replace_validates_and_merges_cast():
    cfg = get_preset("tiny-arithmetic").replace(cast={"lam": 0.1}, method="opsd")
    assert cfg.cast == CASTConfig(lam=0.1, deadband=(0.95, 1.05)) and cfg.method == "opsd"
    with pytest.raises(ValueError, match="TrainConfig.max_steps"):
        cfg.replace(max_steps=0)


def test_cli_reports_bad_configs_clearly(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("warmup = 3\n")
    assert main(["--config", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "warmup" in capsys.readouterr().err
    assert main(["train", "--preset", "tiny-arithmetic", "--method", "ppo"]) == 2
    assert "TrainConfig.method" in capsys.readouterr().err
    assert main(["train", "--preset", "tiny-arithmetic", "--set", "cast.w_clip_correct=[2.0, 1.0]"]) == 2
    assert "w_clip_correct" in capsys.readouterr().err
    assert main(["frobnicate"]) == 2
    assert main(["presets"]) == 0
    assert "tiny-multistep" in capsys.readouterr().out


def test_merge_settings_layers_keys_and_merges_cast_by_field():
    from cast_torch.train.config import merge_settings
    preset = {"lr": 1.0, "max_steps": 5, "cast": {"deadband": [0.95, 1.05], "lam": 0.5}}
    out = merge_settings(preset, {"lr": 2.0, "cast": {"lam": 0.3}}, {"cast": CASTConfig(lam=0.1)})
    assert out["lr"] == 2.0 and out["max_steps"] == 5
    assert out["cast"] == CASTConfig(lam=0.1).to_dict()     # a whole CASTConfig sets every field
    out = merge_settings(preset, {"cast": {"lam": 0.3}})
    assert out["cast"] == {"deadband": [0.95, 1.05], "lam": 0.3}
    assert preset["cast"] == {"deadband": [0.95, 1.05], "lam": 0.5}   # layers are not modified
    with pytest.raises(TypeError, match=r"\[cast\] must be a table"):
        merge_settings(preset, {"cast": 0.3})


def test_cli_layers_preset_file_flags_and_resume_with_one_merge(tmp_path):
    import argparse
    from cast_torch.train.cli import build_config, set_layer
    f = tmp_path / "run.toml"
    f.write_text('preset = "tiny-arithmetic"\nlr = 1e-3\n[cast]\nlam = 0.2\n')
    ns = lambda **kw: argparse.Namespace(**{**dict(config=None, preset=None, method=None, max_steps=None,  # noqa: E731
                                                  seed=None, out=None, model=None, no_progress=False, set=[],
                                                  resume=False), **kw})
    cfg = build_config(ns(config=str(f), set=["cast.zv_neg_base=0.5", "max_steps=7"]))
    assert (cfg.lr, cfg.max_steps) == (1e-3, 7)
    assert cfg.cast == CASTConfig(lam=0.2, zv_neg_base=0.5, deadband=(0.95, 1.05))   # preset < file < --set
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(cfg.to_dict()))
    resumed = build_config(ns(resume=True, out=str(run), set=["cast.lam=0.4"], max_steps=9))
    assert resumed.cast == cfg.cast.replace(lam=0.4) and resumed.max_steps == 9 and resumed.lr == 1e-3
    with pytest.raises(ValueError, match=r"--set: unknown key 'a.b.c'"):
        set_layer(["a.b.c=1"])


@pytest.mark.parametrize("field,value,rule", [("teacher_refresh_steps", 0, "must be an int >= 1"),
                                              ("teacher_ema_decay", 1.5, r"must be a number in \[0, 1\]")])
def test_teacher_schedule_refused_by_every_front_end_alike(field, value, rule):
    """TrainConfig, TRL's CASTGRPOConfig and verl's algorithm.cast refuse the same K / d with one rule."""
    with pytest.raises(ValueError, match=rf"^TrainConfig\.{field}: {rule}"):
        get_preset("tiny-arithmetic", out="runs/x", **{field: value})
    trl_mod = pytest.importorskip("cast_torch.integrations.trl")
    with pytest.raises(ValueError, match=rf"CASTGRPOConfig\.cast_{field}: {rule}"):
        trl_mod.CASTGRPOConfig(output_dir="/tmp/unused-cast-trl", num_generations=2, per_device_train_batch_size=2,
                               **{f"cast_{field}": value})
    from cast_torch.integrations.verl_teacher import TeacherSettings
    with pytest.raises(ValueError, match=rf"^algorithm\.cast\.{field}: {rule}"):
        TeacherSettings(**{"refresh_steps" if "refresh" in field else "ema_decay": value})
