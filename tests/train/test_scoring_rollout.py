"""Tiny model/tokenizer, chunked log-prob scoring, rollout masks."""

from __future__ import annotations

import pytest
import torch

from cast_torch.train.rollout import completion_masks, generate
from cast_torch.train.scoring import token_logprobs
from cast_torch.train.tiny import make_tiny_model, make_tokenizer


@pytest.fixture(scope="module")
def tok():
    return make_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    return make_tiny_model(tok, hidden_size=32, num_layers=1, num_heads=2, seed=3)


def test_tokenizer_round_trips_and_saves(tok, tmp_path):
    text = "12+7=19\n#### 19"
    ids = tok(text, add_special_tokens=False).input_ids
    assert len(ids) == len(text) and tok.decode(ids) == text
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2)
    assert tok.apply_chat_template([{"role": "user", "content": "3+4="}], tokenize=False,
                                   add_generation_prompt=True) == "3+4="
    from transformers import AutoTokenizer
    make_tokenizer(tmp_path)
    again = AutoTokenizer.from_pretrained(str(tmp_path))
    assert again(text, add_special_tokens=False).input_ids == ids


def test_tiny_model_is_seeded_and_validated(tok):
    a = make_tiny_model(tok, arch="qwen2", hidden_size=16, num_layers=1, num_heads=2, seed=1)
    b = make_tiny_model(tok, arch="qwen2", hidden_size=16, num_layers=1, num_heads=2, seed=1)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    with pytest.raises(ValueError, match="arch"):
        make_tiny_model(tok, arch="gpt9")
    with pytest.raises(ValueError, match="hidden_size"):
        make_tiny_model(tok, hidden_size=30, num_heads=4)


def test_logprobs_equal_direct_log_softmax_gather(tok, model):
    torch.manual_seed(0)
    ro = generate(model, tok, ["12+7=", "3-1=", "45+45+1="], num_samples=2, max_new_tokens=5, temperature=1.3)
    with torch.no_grad():
        lp, ent = token_logprobs(model, ro.prompt_ids, ro.prompt_mask, ro.completion_ids, ro.valid_mask,
                                 temperature=1.3, chunk_size=4, with_entropy=True)
        full, _ = token_logprobs(model, ro.prompt_ids, ro.prompt_mask, ro.completion_ids, ro.valid_mask,
                                 temperature=1.3, chunk_size=None)
    assert lp.shape == ro.completion_ids.shape and lp.dtype == torch.float32
    torch.testing.assert_close(lp, full, rtol=0, atol=1e-6)   # chunking does not change values
    for i in range(lp.shape[0]):
        # Ground truth: each row alone, without any padding.
        p = ro.prompt_ids[i][ro.prompt_mask[i].bool()]
        c = ro.completion_ids[i][ro.valid_mask[i]]
        with torch.no_grad():
            logits = model(torch.cat([p, c])[None]).logits[0, len(p) - 1:-1] / 1.3
        direct = torch.log_softmax(logits.float(), -1).gather(-1, c[:, None]).squeeze(-1)
        torch.testing.assert_close(lp[i][ro.valid_mask[i]], direct, rtol=0, atol=1e-5)
        probs = torch.softmax(logits.float(), -1)
        torch.testing.assert_close(ent[i][ro.valid_mask[i]], -(probs * probs.log()).sum(-1), rtol=0, atol=1e-5)


def test_eos_inside_mask_padding_outside():
    eos, pad = 2, 0
    ids = torch.tensor([[5, 6, eos, pad, pad],
                        [eos, pad, pad, pad, pad],
                        [5, 6, 7, 8, 9]])
    valid, truncated = completion_masks(ids, [eos])
    assert valid.tolist() == [[True, True, True, False, False],
                              [True, False, False, False, False],
                              [True, True, True, True, True]]
    assert truncated.tolist() == [False, False, True]
    # pad == eos (many chat models): only the first EOS is inside the mask
    valid, _ = completion_masks(torch.tensor([[5, eos, eos, eos]]), [eos])
    assert valid.tolist() == [[True, True, False, False]]


def test_generate_masks_and_truncation(tok, model):
    torch.manual_seed(1)
    ro = generate(model, tok, ["1+1=", "22+2="], num_samples=3, max_new_tokens=4, mask_truncated=True)
    n, t = ro.completion_ids.shape
    assert n == 6 and t <= 4 and len(ro.texts) == 6
    assert torch.equal(ro.prompt_ids[0], ro.prompt_ids[2])          # rows i*G.. share prompt i
    # padding outside the valid mask, EOS (if any) the last valid token of its row
    assert bool((ro.completion_ids[~ro.valid_mask] == tok.pad_token_id).all())
    for i in range(n):
        eos_pos = (ro.completion_ids[i] == tok.eos_token_id).nonzero()
        if len(eos_pos):
            assert int(ro.valid_mask[i].sum()) == int(eos_pos[0]) + 1
    assert bool((ro.loss_mask[ro.truncated] == False).all())         # noqa: E712
    assert torch.equal(ro.loss_mask[~ro.truncated], ro.valid_mask[~ro.truncated])
