"""The checkpoint format: pickle-free round trip, the previous release's format, LoRA = adapter only."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from cast_torch.train import Trainer
from cast_torch.train.checkpoint import (LEGACY_STATE, STATE_JSON, STATE_TENSORS, latest_checkpoint,
                                         load_trainer_state, pack_state, unpack_state)


def _weights(cfg):
    from transformers import AutoModelForCausalLM
    path = latest_checkpoint(Path(cfg.out) / "checkpoints")
    return [p.detach().clone() for p in AutoModelForCausalLM.from_pretrained(str(path / "model")).parameters()]


def test_pack_unpack_round_trips_every_state_type():
    import random

    import numpy as np
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "opt": opt.state_dict(),
             "gen": torch.Generator().manual_seed(7).get_state(), "bf16": torch.ones(3, dtype=torch.bfloat16),
             "nested": {"__kind__": "a user key", 3: (None, True, 1.5, "s")}}
    tree, tensors = pack_state(state)
    back = unpack_state(json.loads(json.dumps(tree)), tensors)
    assert back["python"] == state["python"]
    assert back["numpy"][0] == "MT19937" and back["numpy"][1].dtype == np.uint32
    assert (back["numpy"][1] == state["numpy"][1]).all() and back["numpy"][2:] == state["numpy"][2:]
    assert back["opt"]["param_groups"] == state["opt"]["param_groups"]               # betas stay a tuple
    assert all(torch.equal(back["opt"]["state"][i][k], v) for i, d in state["opt"]["state"].items()
               for k, v in d.items())
    assert torch.equal(back["gen"], state["gen"]) and back["bf16"].dtype == torch.bfloat16
    assert back["nested"] == state["nested"]
    with pytest.raises(TypeError, match="cannot store a object"):
        pack_state({"x": object()})


@pytest.mark.parametrize("tree,match", [
    ({"a": {"__kind__": "tensor", "key": "nope"}}, "tensor 'nope' is missing"),
    ({"a": {"__kind__": "pickle", "data": "..."}}, "unknown entry kind 'pickle'"),
    ({"a": {"__kind__": "ndarray", "key": "t", "dtype": "O", "shape": [1]}}, "array 't'"),
    ({"a": {"__kind__": "dict", "items": [[1]]}}, "not a \\[key, value\\] pair"),
])
def test_a_tampered_tree_is_refused(tree, match):
    with pytest.raises(ValueError, match=match):
        unpack_state(tree, {"t": torch.zeros(8, dtype=torch.uint8)})


def test_checkpoint_files_hold_no_pickle(make_config):
    cfg = make_config(max_steps=1)
    Trainer(cfg, log=lambda s: None).train()
    path = latest_checkpoint(Path(cfg.out) / "checkpoints")
    names = {p.name for p in path.iterdir()}
    assert {STATE_JSON, STATE_TENSORS, "model"} <= names and LEGACY_STATE not in names
    for f in path.rglob("*"):
        if f.is_file():
            assert not f.read_bytes().startswith(b"\x80"), f   # no pickle protocol header anywhere
            assert f.suffix not in (".pt", ".bin", ".pkl"), f


def test_previous_release_checkpoint_resumes_bit_identically(make_config, tmp_path):
    """A cast-rlvr 0.1.0 checkpoint (pickled trainer_state.pt) resumes through torch's weights-only loader."""
    straight = make_config(out=str(tmp_path / "a"), max_steps=3, teacher="ema")
    Trainer(straight, log=lambda s: None).train()
    first = make_config(out=str(tmp_path / "b"), max_steps=2, teacher="ema")
    Trainer(first, log=lambda s: None).train()
    ckpt = latest_checkpoint(Path(first.out) / "checkpoints")
    torch.save(load_trainer_state(ckpt), ckpt / LEGACY_STATE)      # exactly what 0.1.0's save wrote
    (ckpt / STATE_JSON).unlink()
    (ckpt / STATE_TENSORS).unlink()
    resumed = Trainer(first.replace(max_steps=3), resume=True, log=lambda s: None)
    assert resumed.step_count == 2
    resumed.train()
    assert all(torch.equal(a, b) for a, b in zip(_weights(straight), _weights(first.replace(max_steps=3))))


def test_lora_checkpoint_holds_the_adapter_and_trainer_state_never_the_base(make_config):
    pytest.importorskip("peft")
    from safetensors import safe_open
    cfg = make_config(lora=True, lora_r=2, lora_alpha=4.0, teacher="snapshot", teacher_refresh_steps=1, max_steps=1,
                      tiny_hidden_size=64, tiny_layers=2, tiny_heads=2)
    tr = Trainer(cfg, log=lambda s: None)
    tr.train()
    path = latest_checkpoint(tr.ckpt_dir)
    weights = sorted((path / "model").glob("*.safetensors"))
    assert [f.name for f in weights] == ["adapter_model.safetensors"]
    assert not (path / "model" / "teacher").exists()                         # the teacher adapter is state
    with safe_open(str(weights[0]), "pt") as f:
        keys = list(f.keys())
    assert keys and all("lora_" in k for k in keys)
    with safe_open(str(path / STATE_TENSORS), "pt") as f:
        teacher = [k for k in f.keys() if k.startswith("state.teacher.")]
    assert len(teacher) == len(keys)                                          # one teacher copy per adapter tensor
    base_bytes = sum(p.numel() * p.element_size() for n, p in tr.model.named_parameters() if "lora_" not in n)
    ckpt_bytes = sum(f.stat().st_size for f in path.rglob("*.safetensors"))
    assert ckpt_bytes < base_bytes / 3, (ckpt_bytes, base_bytes)


def test_no_checkpoints_when_both_switches_are_off(make_config):
    cfg = make_config(max_steps=2, save_every=0, save_final=False)
    tr = Trainer(cfg, log=lambda s: None)
    tr.train()
    assert not tr.ckpt_dir.exists() and tr.last_saved_step == -1
    cfg = make_config(out=os.path.join(cfg.out + "-2"), max_steps=2, save_every=1, save_final=False)
    tr = Trainer(cfg, log=lambda s: None)
    tr.train()
    assert [p.name for p in sorted(tr.ckpt_dir.glob("step-*"))] == ["step-1", "step-2"]


@pytest.mark.slow
def test_lora_checkpoint_of_a_smollm2_135m_shaped_model_is_small(tmp_path):
    """SmolLM2-135M's shapes (random weights: nothing is downloaded), LoRA r = 16 on every linear
    layer, one CAST step: the checkpoint is the adapter, its teacher copy and Adam's two moments
    (4 x 19.6 MB), not the 538 MB of base weights (full fine-tuning wrote ~2.1 GB: weights,
    teacher copy and moments)."""
    pytest.importorskip("peft")
    from transformers import LlamaConfig, LlamaForCausalLM

    from cast_torch.train import config_from_mapping
    from cast_torch.train.tiny import make_tokenizer
    model_dir = tmp_path / "smollm2-135m-shape"
    shape = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                        num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                        rope_theta=100000.0, rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=1,
                        eos_token_id=2, pad_token_id=0)
    torch.manual_seed(0)
    make_tokenizer(model_dir)
    LlamaForCausalLM(shape).save_pretrained(str(model_dir))
    cfg = config_from_mapping(dict(
        out=str(tmp_path / "run"), model=str(model_dir), data="arithmetic", max_operand=9, num_problems=40,
        eval_size=4, prompts_per_step=2, group_size=2, max_new_tokens=4, max_steps=1, eval_every=0, save_every=0,
        tensorboard=False, progress=False, lora=True, lora_r=16, lora_alpha=32.0, teacher="snapshot",
        use_chat_template="never"))
    tr = Trainer(cfg, log=lambda s: None)
    tr.train()
    path = latest_checkpoint(tr.ckpt_dir)
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    base = (model_dir / "model.safetensors").stat().st_size
    assert size < 200e6 and size < base / 5, (size, base)
