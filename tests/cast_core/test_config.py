"""CASTConfig: contract defaults, validation that names the field, the λ schedule."""
import dataclasses

import pytest

from cast_core import CASTConfig, lam_at, zv_scale_at


def test_defaults_are_the_contract():
    c = CASTConfig()
    assert (c.scale, c.std_ddof, c.eps, c.correct_threshold) == ("group", 0, 1e-6, 0.5)
    assert (c.lam, c.lam_decay_steps, c.zv_pos_base, c.zv_neg_base, c.zv_scale_with_lam) == (0.5, 0, 1.0, 1.0, True)
    assert c.w_clip_correct == (0.8, 1.05) and c.w_clip_wrong == (0.95, 1.2)
    assert c.adv_clip == (-1.2, 1.2) and c.deadband == (1.0, 1.0)
    assert c.flip_correct is True and c.flip_wrong is True


def test_frozen_and_help_text_on_every_field():
    c = CASTConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.lam = 1.0  # type: ignore[misc]
    for f in dataclasses.fields(CASTConfig):
        assert f.metadata.get("help"), f"field {f.name} has no help text"


def test_lists_become_tuples_and_roundtrip():
    c = CASTConfig(adv_clip=[-2, 2], deadband=[0.95, 1.05])
    assert c.adv_clip == (-2.0, 2.0) and isinstance(c.deadband, tuple)
    assert CASTConfig.from_dict(c.to_dict()) == c
    assert c.replace(lam=0.1).lam == 0.1


@pytest.mark.parametrize("field, value, exc", [
    ("scale", "std", ValueError),
    ("std_ddof", 2, ValueError),
    ("std_ddof", True, ValueError),
    ("eps", 0.0, ValueError),
    ("eps", float("nan"), ValueError),
    ("lam", -0.1, ValueError),
    ("lam", float("inf"), ValueError),
    ("lam", "0.5", TypeError),
    ("lam_decay_steps", -1, ValueError),
    ("lam_decay_steps", 1.5, ValueError),
    ("zv_pos_base", -1.0, ValueError),
    ("zv_neg_base", -0.5, ValueError),
    ("zv_scale_with_lam", 1, TypeError),
    ("flip_correct", "yes", TypeError),
    ("w_clip_correct", (1.1, 1.0), ValueError),
    ("w_clip_correct", (-0.1, 1.0), ValueError),
    ("w_clip_wrong", (-0.1, 1.0), ValueError),
    ("w_clip_wrong", (0.9,), TypeError),
    ("adv_clip", (0.1, 1.0), ValueError),
    ("adv_clip", (-1.0, -0.1), ValueError),
    ("adv_clip", (-1.0, float("inf")), ValueError),
    ("deadband", (0.0, 1.0), ValueError),
    ("deadband", (1.1, 1.0), ValueError),
    ("correct_threshold", float("nan"), ValueError),
])
def test_bad_values_name_the_field(field, value, exc):
    with pytest.raises(exc, match=field):
        CASTConfig(**{field: value})


def test_unknown_key_is_named():
    with pytest.raises(ValueError, match="lamda"):
        CASTConfig.from_dict({"lamda": 0.3})


def test_lambda_schedule_and_zero_variance_scale():
    c = CASTConfig(lam_decay_steps=300)
    assert lam_at(c, 0) == 0.5 and lam_at(c, 150) == 0.25 and lam_at(c, 300) == 0.0 and lam_at(c, 10_000) == 0.0
    assert zv_scale_at(c, 150) == 0.5 and zv_scale_at(c, 400) == 0.0
    assert lam_at(CASTConfig(), 10_000) == 0.5 and zv_scale_at(CASTConfig(), 10_000) == 1.0
    assert zv_scale_at(CASTConfig(lam=0.0), 0) == 0.0
    assert zv_scale_at(CASTConfig(lam_decay_steps=300, zv_scale_with_lam=False), 150) == 1.0
    with pytest.raises(ValueError, match="step"):
        lam_at(c, -1)
    with pytest.raises(TypeError, match="step"):
        lam_at(c, 1.5)
