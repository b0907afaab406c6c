"""CAST on TRL, any number of GPUs: `accelerate launch ... train_cast_grpo.py --model_name_or_path ...`.

Every `CASTGRPOConfig` / `GRPOConfig` field is a command-line flag (`--cast_lam 0.5`,
`--use_vllm`, ...). The dataset is a JSONL file whose rows hold a `prompt` (text or chat
messages) and a reference `answer`; the reward is `cast_core.verify.math_reward` (1.0 when
the completion's final answer is equivalent to `answer`, else 0.0). See README.md.
"""

from dataclasses import dataclass, field

from datasets import load_dataset
from transformers import HfArgumentParser

from cast_core.verify import math_reward
from cast_torch.integrations.trl import CASTGRPOConfig, CASTGRPOTrainer


@dataclass
class ScriptArguments:
    model_name_or_path: str = field(metadata={"help": "Local path or hub id of the policy."})
    train_file: str = field(metadata={"help": "JSONL with `prompt` and `answer` columns."})
    peft_lora_r: int = field(default=0, metadata={"help": "LoRA rank; 0 trains all weights."})
    peft_lora_alpha: int = field(default=128, metadata={"help": "LoRA alpha (used when peft_lora_r > 0)."})


def correctness(completions, answer, **kwargs):
    """1.0 when the completion's answer matches the row's reference answer (bounded parse)."""
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [math_reward(text, ref) for text, ref in zip(texts, answer)]


def main():
    script_args, training_args = HfArgumentParser((ScriptArguments, CASTGRPOConfig)).parse_args_into_dataclasses()
    dataset = load_dataset("json", data_files=script_args.train_file, split="train")
    peft_config = None
    if script_args.peft_lora_r > 0:
        from peft import LoraConfig

        peft_config = LoraConfig(r=script_args.peft_lora_r, lora_alpha=script_args.peft_lora_alpha,
                                 target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = CASTGRPOTrainer(model=script_args.model_name_or_path, reward_funcs=correctness,
                              args=training_args, train_dataset=dataset, peft_config=peft_config)
    trainer.train()
    trainer.save_model(training_args.output_dir)


if __name__ == "__main__":
    main()
