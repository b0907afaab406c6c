"""torchrun target of test_verl_teacher.py's FSDP2 test: run with 2 CPU processes (gloo).

    torchrun --nproc_per_node 2 _fsdp2_teacher_worker.py OUT_DIR {full|lora}

The tiny model is sharded with FSDP2 (``fully_shard`` per decoder layer and at the root), so
every trainable parameter is a DTensor whose local shard is half of it. The teacher is built on
those shards, as CAST's verl worker builds it on an FSDP actor.
"""

import copy
import sys

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard

from cast_torch.integrations.verl_teacher import (
    TeacherSettings,
    WeightSwapTeacher,
    reshard_fsdp,
    trainable_parameters,
)
from cast_torch.train.tiny import make_tiny_model, make_tokenizer


def main(out_dir: str, mode: str) -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    mesh = init_device_mesh("cpu", (world,))
    tokenizer = make_tokenizer()
    model = make_tiny_model(tokenizer, hidden_size=32, num_layers=2, num_heads=2, seed=0)
    if mode == "lora":
        from peft import LoraConfig, get_peft_model

        torch.manual_seed(0)
        model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                 init_lora_weights=False))
    reference = copy.deepcopy(model)  # unsharded; identical on both ranks (seeded)
    layers = (model.base_model.model if mode == "lora" else model).model.layers
    for layer in layers:
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)

    named = trainable_parameters(model)
    assert named and all(type(p).__name__ == "DTensor" for _, p in named), [type(p) for _, p in named]
    assert any(p.to_local().numel() < p.numel() for _, p in named), "nothing is sharded"
    start = {n: p.full_tensor().detach().clone() for n, p in named}
    teacher = WeightSwapTeacher(named, TeacherSettings("ema", ema_decay=0.9))
    assert [t.shape for t in teacher.tensors] == [p.to_local().shape for _, p in named]

    ids = torch.tensor([tokenizer.encode("12+30=42"), tokenizer.encode("7*6=42!!")])
    opt = torch.optim.SGD([p for _, p in named], lr=0.5)
    model(input_ids=ids, labels=ids).loss.backward()
    opt.step()
    opt.zero_grad()
    policy = {n: p.full_tensor().detach().clone() for n, p in named}
    assert any(not torch.equal(policy[n], start[n]) for n in policy)

    with torch.no_grad():
        policy_logits = model(input_ids=ids).logits  # leaves the root's gathered copy in place (FSDP2)
    assert teacher.after_update()
    with teacher.swapped(model):
        full_teacher = {n: p.full_tensor().detach().clone() for n, p in named}
        with torch.no_grad():
            teacher_logits = model(input_ids=ids).logits
    for n in policy:
        expected = 0.9 * start[n] + 0.1 * policy[n]
        assert (full_teacher[n] - expected).abs().max() < 1e-6, n
        assert torch.equal(dict(named)[n].full_tensor(), policy[n]), f"{n} not restored"
    with torch.no_grad():  # the forward after the block is the policy's again, gathered copy included
        torch.testing.assert_close(model(input_ids=ids).logits, policy_logits, rtol=0, atol=0)

    with torch.no_grad():
        for n, p in trainable_parameters(reference):
            p.copy_(full_teacher[n])
        reference_logits = reference(input_ids=ids).logits
    torch.testing.assert_close(teacher_logits, reference_logits, rtol=1e-5, atol=1e-5)

    path = WeightSwapTeacher.file_for(out_dir, rank)
    teacher.save(path)
    dist.barrier()
    reshard_fsdp(model)  # the teacher is built on shards, as the worker builds it right after verl's init
    again = WeightSwapTeacher(trainable_parameters(model), TeacherSettings("ema", ema_decay=0.9))
    again.load(path)
    assert again.updates == 1 and all(torch.equal(a, b) for a, b in zip(again.tensors, teacher.tensors))
    print(f"FSDP2-TEACHER-OK rank {rank}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
