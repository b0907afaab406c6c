"""Convert local GSM8K or MATH files into the trainer's JSONL ({"prompt", "answer"} per line).

Offline only: reads files you already have (a Hugging Face dataset snapshot's
parquet/json files, or the original GitHub releases) with ``datasets`` and never
touches the network. Examples::

    # GSM8K (openai/gsm8k snapshot: main/train-00000-of-00001.parquet, or grade-school-math train.jsonl)
    python examples/gpu_recipe/prepare_data.py gsm8k /data/gsm8k/main/train-00000-of-00001.parquet \
        data/gsm8k/train.jsonl
    python examples/gpu_recipe/prepare_data.py gsm8k /data/gsm8k/main/test-00000-of-00001.parquet \
        data/gsm8k/test.jsonl

    # MATH (hendrycks MATH: a directory tree of per-problem .json files, or any parquet/jsonl
    # with "problem" and "solution" (or "answer") columns, e.g. MATH-500's test.jsonl)
    python examples/gpu_recipe/prepare_data.py math /data/MATH/train data/math/train.jsonl

Each output line is ``{"prompt": <question + instruction>, "answer": <final answer>,
"source": <dataset>}``. The final answer is the text after ``####`` (GSM8K, thousands
separators removed) or the last ``\\boxed{...}`` of the solution (MATH), both via
``cast_core.verify.reference_answer``; rows without one are skipped and counted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Iterator

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

__all__ = ["INSTRUCTION", "convert_rows", "read_rows", "main"]

INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
_LOADERS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}
_QUESTION_KEYS = ("question", "problem", "prompt")
_SOLUTION_KEYS = ("answer", "solution")
MAX_FIELD_CHARS = 20_000   # dataset rows are trusted, but a corrupt file should not blow up memory


def read_rows(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """Rows of a local file (parquet/jsonl/json/csv via ``datasets``) or of a directory tree.

    A directory yields every ``*.json`` file below it as one row (the MATH release layout)
    plus the rows of any parquet/jsonl/csv files in it.
    """
    p = Path(path)
    if not p.exists():
        raise ValueError(f"input: {str(p)!r} does not exist")
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in _LOADERS)
    if not files:
        raise ValueError(f"input: no .parquet/.jsonl/.json/.csv files under {str(p)!r}")
    from datasets import load_dataset
    per_problem = [f for f in files if f.suffix.lower() == ".json" and p.is_dir()]
    for f in per_problem:
        try:
            row = json.loads(f.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"input: {f}: not JSON: {e}") from None
        if isinstance(row, dict):
            yield row
    for f in files:
        if f in per_problem:
            continue
        ds = load_dataset(_LOADERS[f.suffix.lower()], data_files=str(f), split="train")
        yield from ds


def _pick(row: dict[str, Any], keys: Iterable[str], what: str, index: int) -> str:
    for k in keys:
        v = row.get(k)
        if isinstance(v, str) and v.strip():
            return v[:MAX_FIELD_CHARS]
    raise ValueError(f"row {index}: no {what} column (looked for {list(keys)}; has {sorted(row)})")


def convert_rows(rows: Iterable[dict[str, Any]], dataset: str) -> tuple[list[dict[str, str]], int]:
    """``(converted rows, number skipped)`` for ``dataset`` "gsm8k" or "math"."""
    from cast_core.verify import extract_answer

    if dataset not in ("gsm8k", "math"):
        raise ValueError(f"dataset: must be 'gsm8k' or 'math', got {dataset!r}")
    out, skipped = [], 0
    for i, row in enumerate(rows):
        question = _pick(row, _QUESTION_KEYS, "question", i).strip()
        solution = _pick(row, _SOLUTION_KEYS, "answer/solution", i)
        strategies = ("gsm8k",) if dataset == "gsm8k" else ("boxed",)
        answer = extract_answer(solution, strategies=strategies)
        if answer is None and dataset == "math" and "solution" in row and isinstance(row.get("answer"), str):
            answer = row["answer"].strip() or None   # MATH-500 style rows carry a separate answer
        if answer is None and dataset == "math" and "\\boxed" not in solution and len(solution) < 100:
            answer = solution.strip()                 # a bare answer column
        if not answer:
            skipped += 1
            continue
        if dataset == "gsm8k":
            answer = answer.replace(",", "")
        out.append({"prompt": f"{question}\n{INSTRUCTION}", "answer": answer, "source": dataset})
    return out, skipped


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dataset", choices=("gsm8k", "math"))
    ap.add_argument("input", help="a local file or directory (never a hub name)")
    ap.add_argument("output", help="the JSONL to write")
    ap.add_argument("--limit", type=int, default=0, help="keep at most this many rows (0: all)")
    args = ap.parse_args(argv)
    if args.limit < 0:
        ap.error("--limit: must be >= 0")
    try:
        rows, skipped = convert_rows(read_rows(args.input), args.dataset)
    except ValueError as e:
        ap.error(str(e))
    if args.limit:
        rows = rows[: args.limit]
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} rows to {out} ({skipped} skipped: no final answer found)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
