"""cast_core.settings: the run-setting rules every front end shares."""

import pytest

from cast_core.settings import check_group_size, check_teacher_schedule, check_teacher_template, template_fields


@pytest.mark.parametrize("value", [2, 8, 64])
def test_group_size_accepts_two_or_more(value):
    assert check_group_size(value, "G") == value


@pytest.mark.parametrize("value,err", [(1, ValueError), (0, ValueError), (-3, ValueError), (True, TypeError),
                                       (2.0, TypeError), ("8", TypeError)])
def test_group_size_refuses_with_the_field_name(value, err):
    with pytest.raises(err, match=r"^X\.group_size: "):
        check_group_size(value, "X.group_size")


def test_group_of_one_says_why():
    with pytest.raises(ValueError, match="no relative advantage"):
        check_group_size(1, "G")


@pytest.mark.parametrize("k,d", [(1, 0.0), (50, 0.995), (7, 1), (3, 1.0)])
def test_teacher_schedule_accepts(k, d):
    assert check_teacher_schedule(k, d, names=("K", "d")) == (k, float(d))


@pytest.mark.parametrize("k", [0, -1, True, 2.0, "5", None])
def test_teacher_schedule_refuses_refresh_steps_with_its_name(k):
    with pytest.raises(ValueError, match=r"^X\.refresh: must be an int >= 1"):
        check_teacher_schedule(k, 0.9, names=("X.refresh", "X.decay"))


@pytest.mark.parametrize("d", [-0.01, 1.0001, float("nan"), float("inf"), True, "0.9", None])
def test_teacher_schedule_refuses_ema_decay_with_its_name(d):
    with pytest.raises(ValueError, match=r"^X\.decay: must be a number in \[0, 1\]"):
        check_teacher_schedule(5, d, names=("X.refresh", "X.decay"))


@pytest.mark.parametrize("template,fields", [
    ("{prompt}", ["prompt"]), ("Q: {prompt}\nA: {answer}", ["prompt", "answer"]), ("{{literal}} {prompt}", ["prompt"]),
])
def test_plain_fields(template, fields):
    assert template_fields(template, "T") == fields


@pytest.mark.parametrize("template,match", [
    ("{prompt:>200000000}", "not allowed"), ("{prompt!r}", "not allowed"), ("{prompt.__class__}", "not allowed"),
    ("{prompt[0]}", "not allowed"), ("{}", "not allowed"), ("{0}", "not allowed"), ("{prompt", "malformed"),
    ("prompt}", "malformed"),
])
def test_anything_but_plain_names_is_refused(template, match):
    with pytest.raises(ValueError, match=r"^T: .*" + match):
        template_fields(template, "T")


def test_teacher_template_rules():
    kw = dict(name="T", privileged_flag="allow = true")
    assert check_teacher_template("Think. {prompt}", allow_privileged=False, **kw) == ["prompt"]
    with pytest.raises(ValueError, match=r"must contain \{prompt\}"):
        check_teacher_template("no slot", allow_privileged=True, **kw)
    with pytest.raises(ValueError, match=r"privileged.*allow = true"):
        check_teacher_template("{prompt} {answer}", allow_privileged=False, **kw)
    assert check_teacher_template("{prompt} {answer}", allow_privileged=True, **kw) == ["prompt", "answer"]
    with pytest.raises(ValueError, match=r"unknown slot\(s\) \['hint'\]"):
        check_teacher_template("{prompt} {hint}", allow_privileged=True, allowed=("prompt", "answer"), **kw)
    with pytest.raises(TypeError, match="must be a str"):
        check_teacher_template(None, allow_privileged=True, **kw)
