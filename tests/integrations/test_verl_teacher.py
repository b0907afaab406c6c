"""CAST's verl teacher (weight swap, schedules, checkpoints) on the tiny local model, torch only.

The FSDP2 case (2 processes, gloo, real DTensor shards) is the slow test at the end."""

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from cast_torch.integrations.verl_teacher import (  # noqa: E402
    TeacherSettings,
    WeightSwapTeacher,
    trainable_parameters,
)
from cast_torch.train.tiny import make_tiny_model, make_tokenizer  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer()


def _model(tokenizer, dtype=torch.float32):
    return make_tiny_model(tokenizer, hidden_size=32, num_layers=2, num_heads=2).to(dtype)


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


def _train_step(model, ids, lr=1e-2):
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr)
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    opt.step()
    opt.zero_grad()


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _ids(tokenizer):
    return torch.tensor([tokenizer.encode("12+30=42")] * 2)


def test_snapshot_swap_scores_the_teacher_and_restores_the_policy_exactly(tokenizer):
    model, ids = _model(tokenizer), _ids(tokenizer)
    base = copy.deepcopy(model)
    teacher = WeightSwapTeacher(trainable_parameters(model), TeacherSettings("snapshot", refresh_steps=2))
    _train_step(model, ids)
    policy_state, policy_logits = _state(model), _logits(model, ids)
    assert not torch.allclose(policy_logits, _logits(base, ids))

    with teacher.swapped():
        torch.testing.assert_close(_logits(model, ids), _logits(base, ids), rtol=0, atol=0)
    assert all(torch.equal(v, policy_state[k]) for k, v in model.state_dict().items())

    assert teacher.after_update() is False                     # update 1 of K = 2: still the base
    with teacher.swapped():
        torch.testing.assert_close(_logits(model, ids), _logits(base, ids), rtol=0, atol=0)
    assert teacher.after_update() is True and teacher.refreshes == 1   # update 2: a copy of the policy
    with teacher.swapped():
        torch.testing.assert_close(_logits(model, ids), policy_logits, rtol=0, atol=0)
    _train_step(model, ids)
    with teacher.swapped():  # the snapshot stays at update 2 while the policy moves on
        torch.testing.assert_close(_logits(model, ids), policy_logits, rtol=0, atol=0)


def test_swap_restores_after_an_exception(tokenizer):
    model = _model(tokenizer)
    teacher = WeightSwapTeacher(trainable_parameters(model), TeacherSettings("snapshot"))
    _train_step(model, _ids(tokenizer))
    before = _state(model)
    with pytest.raises(RuntimeError, match="boom"):
        with teacher.swapped():
            raise RuntimeError("boom")
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_ema_is_kept_in_float32_for_bfloat16_weights(tokenizer):
    model, ids = _model(tokenizer, torch.bfloat16), _ids(tokenizer)
    teacher = WeightSwapTeacher(trainable_parameters(model), TeacherSettings("ema", ema_decay=0.995))
    start = [p.detach().clone() for _, p in trainable_parameters(model)]
    expected = [p.float() for p in start]
    ema16 = [p.clone() for p in start]  # the same EMA kept in bfloat16
    for _ in range(3):
        _train_step(model, ids, lr=0.5)
        assert teacher.after_update() is True
        for e, e16, (_, p) in zip(expected, ema16, trainable_parameters(model)):
            e.mul_(0.995).add_(p.detach().float(), alpha=0.005)
            e16.lerp_(p.detach(), 0.005)
    assert all(t.dtype == torch.float32 for t in teacher.tensors)
    assert max((t - e).abs().max().item() for t, e in zip(teacher.tensors, expected)) < 1e-6
    moved32 = sum(int((t != p0.float()).sum()) for t, p0 in zip(teacher.tensors, start))
    moved16 = sum(int((e16 != p0).sum()) for e16, p0 in zip(ema16, start))
    # In bfloat16 a 0.5% step toward the policy rounds back to the old value for most weights.
    assert moved32 > 0.9 * sum(t.numel() for t in teacher.tensors) and moved16 < 0.5 * moved32


def test_lora_teacher_holds_only_the_adapter(tokenizer):
    peft = pytest.importorskip("peft")
    model = peft.get_peft_model(_model(tokenizer), peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                                     init_lora_weights=False))
    ids = _ids(tokenizer)
    names = [n for n, _ in trainable_parameters(model)]
    assert names and all("lora_" in n for n in names)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    start = copy.deepcopy(model)
    teacher = WeightSwapTeacher(trainable_parameters(model), TeacherSettings("snapshot", refresh_steps=50))
    _train_step(model, ids)
    with teacher.swapped():
        torch.testing.assert_close(_logits(model, ids), _logits(start, ids), rtol=0, atol=0)
    for n, p in model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n])
    with model.disable_adapter():  # the base teacher (verl's ref with the adapter off) is another thing
        assert not torch.allclose(_logits(model, ids), _logits(start, ids))


def test_save_and_load_round_trip_and_mismatches(tokenizer, tmp_path):
    model, ids = _model(tokenizer), _ids(tokenizer)
    settings = TeacherSettings("ema", ema_decay=0.9)
    teacher = WeightSwapTeacher(trainable_parameters(model), settings)
    _train_step(model, ids)
    teacher.after_update()
    path = WeightSwapTeacher.file_for(tmp_path, rank=3)
    assert path.endswith("cast_teacher_rank3.safetensors")
    teacher.save(path)
    assert sorted(os.listdir(tmp_path)) == ["cast_teacher_rank3.safetensors"]  # no temporary left behind

    other = _model(tokenizer)
    restored = WeightSwapTeacher(trainable_parameters(other), settings)
    restored.load(path)
    assert restored.updates == 1
    assert all(torch.equal(a, b) for a, b in zip(restored.tensors, teacher.tensors))

    with pytest.raises(ValueError, match="teacher is 'ema', this run's is 'snapshot'"):
        WeightSwapTeacher(trainable_parameters(other), TeacherSettings("snapshot")).load(path)
    bigger = make_tiny_model(tokenizer, hidden_size=64, num_layers=2, num_heads=2)
    with pytest.raises(ValueError, match="do not match this model"):
        WeightSwapTeacher(trainable_parameters(bigger), settings).load(path)
    from safetensors.torch import save_file
    save_file({"x": torch.zeros(1)}, tmp_path / "plain.safetensors")
    with pytest.raises(ValueError, match="not a CAST teacher checkpoint"):
        restored.load(tmp_path / "plain.safetensors")


def test_offload_keeps_the_teacher_in_cpu_memory(tokenizer):
    model = _model(tokenizer)
    teacher = WeightSwapTeacher(trainable_parameters(model), TeacherSettings("snapshot", offload=True))
    assert all(t.device.type == "cpu" for t in teacher.tensors)


def test_settings_validation():
    with pytest.raises(ValueError, match="needs a snapshot or ema"):
        WeightSwapTeacher([("w", torch.zeros(1, requires_grad=True))], TeacherSettings("base"))
    with pytest.raises(ValueError, match="no trainable"):
        WeightSwapTeacher([], TeacherSettings("ema"))
    with pytest.raises(TypeError, match="teacher_offload: must be a bool"):
        TeacherSettings(offload="yes")
    with pytest.raises(ValueError, match="teacher_refresh_steps"):
        TeacherSettings(refresh_steps=True)


@pytest.mark.slow
@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_fsdp2_two_processes_swap_and_ema_on_dtensor_shards(tmp_path, lora):
    """torchrun, 2 CPU processes, gloo: FSDP2 (fully_shard) shards the tiny model; each rank's
    teacher holds its DTensor shard. The worker script checks, on gathered full tensors, that the
    swapped forward is the reference teacher's, the policy comes back bit-exact, and the EMA is
    the float32 lerp; it also saves and reloads each rank's shard."""
    torchrun = [sys.executable, "-m", "torch.distributed.run"]   # this interpreter's, not PATH's
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OMP_NUM_THREADS": "1"}
    cmd = [*torchrun, "--nproc_per_node", "2", "--master_port", str(29500 + os.getpid() % 1000 + int(lora)),
           str(HERE / "_fsdp2_teacher_worker.py"), str(tmp_path), "lora" if lora else "full"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert sorted(p.name for p in tmp_path.glob("cast_teacher_rank*.safetensors")) == [
        "cast_teacher_rank0.safetensors", "cast_teacher_rank1.safetensors"]
    assert proc.stdout.count("FSDP2-TEACHER-OK") == 2, proc.stdout
