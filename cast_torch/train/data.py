"""Problems with reference answers: the built-in arithmetic generators and file loading.

A problem is a dict row with at least ``"prompt"`` (a string, or a list of chat
messages) and ``"answer"`` (a string); built-in rows also carry ``"solution"`` (a
worked solution ending in ``#### <answer>``, the format ``cast_core.verify`` extracts),
used by the tiny model's supervised warm start.

- ``"arithmetic"``: ``"a+b="`` / ``"a-b="`` with operands in 0..max_operand (no
  negative results); solution ``"#### c"``.
- ``"multistep"``: ``num_terms`` terms joined by + and -, evaluated left to right with
  every intermediate result >= 0; the worked solution writes one line per operation
  (``"12+7=19\\n19-5=14\\n#### 14"``). Long problems fail more often, so all-correct and
  all-wrong groups are both common.
- ``"word-problems"``: GSM8K-format word problems with ``num_terms - 1`` operations
  (:mod:`cast_torch.train.word_problems`), for real instruct models.

Files: ``.jsonl`` (one JSON object per line) and ``.json`` (a list of objects) are read with
the standard library, so an error names the line; ``.parquet``/``.csv`` load through
``datasets``. Column names are configurable; every row must have both columns; other columns
are kept and passed to the reward function.
The evaluation problems are disjoint from the training ones (built-ins: by prompt).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Callable, Sequence

from .word_problems import word_problem

__all__ = [
    "arithmetic_problem", "generate_problems", "noisy_solution", "load_problems", "check_enough_prompts",
    "PromptSampler",
    "DATA_SUFFIXES", "builtin_terms", "builtin_generator", "EVAL_SEED", "TRAIN_SEED", "WARM_START_SEED",
]

DATA_SUFFIXES = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


def arithmetic_problem(rng: random.Random, *, max_operand: int, num_terms: int = 2) -> dict[str, str]:
    """One random problem ``{"prompt", "answer", "solution", "partial"}``.

    ``partial`` is the value before the last operation (used by :func:`noisy_solution`).

    Args:
        rng: the random source (``random.Random``).
        max_operand: operands are drawn uniformly from 0..max_operand.
        num_terms: 2 gives one operation and the bare solution ``"#### c"``; more terms
            give a worked solution with one line per operation.
    """
    value = rng.randint(0, max_operand)
    prompt = str(value)
    steps = []
    partial = value
    for _ in range(num_terms - 1):
        partial = value
        operand = rng.randint(0, max_operand)
        if rng.random() < 0.5 or operand > value:   # subtraction only when it stays >= 0
            op, new = "+", value + operand
        else:
            op, new = "-", value - operand
        steps.append(f"{value}{op}{operand}={new}")
        prompt += f"{op}{operand}"
        value = new
    prompt += "="
    worked = "" if num_terms == 2 else "\n".join(steps) + "\n"
    return {"prompt": prompt, "answer": str(value), "solution": f"{worked}#### {value}", "partial": str(partial)}


def generate_problems(n: int, *, seed: int, max_operand: int, num_terms: int = 2,
                      exclude: Sequence[str] = ()) -> list[dict[str, str]]:
    """``n`` problems from :func:`arithmetic_problem` whose prompts are not in ``exclude``.

    Prompts may repeat within the result (the problem space can be smaller than ``n``).
    Raises ``ValueError`` if ``exclude`` leaves no room (after ``100 * n`` draws).
    """
    return _draw(n, seed, lambda rng: arithmetic_problem(rng, max_operand=max_operand, num_terms=num_terms),
                 exclude=exclude)


def _draw(n: int, seed: int, make: Callable[[random.Random], dict[str, str]], *, exclude: Sequence[str] = (),
          unique: bool = False) -> list[dict[str, str]]:
    """``n`` problems ``make(rng)`` (seeded ``seed``) with prompts outside ``exclude`` (distinct if ``unique``)."""
    rng = random.Random(seed)
    banned = set(exclude)
    out: list[dict[str, str]] = []
    draws = 0
    while len(out) < n:
        draws += 1
        if draws > 100 * n + 1000:
            if unique:
                raise ValueError(f"eval_size: only {len(out)} distinct problems exist for these generator "
                                 f"settings (max_operand, num_terms); asked for {n}")
            raise ValueError(f"generate_problems: cannot draw {n} problems outside the {len(banned)} "
                             "excluded ones (max_operand is too small?)")
        p = make(rng)
        if p["prompt"] not in banned:
            out.append(p)
            if unique:
                banned.add(p["prompt"])
    return out


def noisy_solution(problem: dict[str, str], rng: random.Random, noise: float) -> str:
    """The problem's worked solution; with probability ``noise`` it skips the last operation.

    The faulty solution ends in ``#### <value before the last operation>`` (for ``a+b=``:
    ``#### a``), a systematic shortcut. A warm start on such data gives a policy with real
    but imperfect accuracy whose main error is one consistent habit: exactly what a
    verifiable reward can find and remove, so RL visibly improves it.
    """
    solution = problem["solution"]
    if noise <= 0 or rng.random() >= noise or problem["partial"] == problem["answer"]:
        return solution
    head, _, _ = solution.rpartition("#### ")
    return f"{head}#### {problem['partial']}"


# Fixed data seeds: the problems (and hence the cached warm start, which must never see
# the evaluation prompts) do not depend on the run seed, so runs that differ only in
# seed or method share one warm-started model and one evaluation set.
EVAL_SEED, TRAIN_SEED, WARM_START_SEED = 17, 29, 43


def builtin_terms(config) -> int:
    """Number of terms of the built-in generator named by ``config.data``."""
    return 2 if config.data == "arithmetic" else config.num_terms


def builtin_generator(config) -> Callable[[random.Random], dict[str, str]]:
    """``rng -> problem`` for the built-in data ``config.data`` with its settings."""
    terms = builtin_terms(config)
    if config.data == "word-problems":
        from .config import word_families
        families = word_families(config)
        return lambda rng: word_problem(rng, max_operand=config.max_operand, num_steps=terms - 1,
                                        families=families)
    return lambda rng: arithmetic_problem(rng, max_operand=config.max_operand, num_terms=terms)


def _builtin_split(config) -> tuple[list[dict], list[dict]]:
    make = builtin_generator(config)
    eval_rows = _draw(config.eval_size, EVAL_SEED, make, unique=True)
    train_rows = _draw(config.num_problems, TRAIN_SEED, make, exclude=[r["prompt"] for r in eval_rows])
    return train_rows, eval_rows


def _read_json_records(p: Path, what: str) -> list[Any]:
    """Records of a JSON Lines file (one object per line) or a JSON file (a list of objects).

    Read with the standard library so every problem names the file and the line.
    """
    raw = p.read_bytes()
    if p.suffix.lower() == ".json" and raw.lstrip()[:1] == b"[":
        try:
            records = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise ValueError(f"{what}: {str(p)!r} is not UTF-8 text (byte {e.start}); save it as UTF-8") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"{what}: {str(p)!r} is not valid JSON (line {e.lineno}, column {e.colno}: "
                             f"{e.msg})") from None
        return records
    records = []
    for lineno, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line.decode("utf-8")))
        except UnicodeDecodeError as e:
            raise ValueError(f"{what}: {str(p)!r} line {lineno} is not UTF-8 text (byte {e.start}); save the file "
                             "as UTF-8") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"{what}: {str(p)!r} line {lineno} is not valid JSON ({e.msg}, column {e.colno}); "
                             "fix or remove that line (JSON Lines: one object per line)") from None
    return records


def _read_table(p: Path, kind: str, what: str) -> list[Any]:
    """Rows of a CSV or Parquet file, read by ``datasets``; its errors are translated."""
    from datasets import load_dataset
    from datasets.exceptions import DatasetGenerationError

    try:
        ds = load_dataset(kind, data_files=str(p), split="train")
    except (DatasetGenerationError, ValueError, OSError) as e:
        cause = e.__cause__ or e.__context__ or e
        detail = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        raise ValueError(f"{what}: {str(p)!r} cannot be read as {kind} ({detail[:300]}); check the file") from None
    return list(ds)


def _load_file(path: str, config, what: str) -> list[dict[str, Any]]:
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{what}: file {path!r} does not exist (built-in data: 'arithmetic', 'multistep')")
    kind = DATA_SUFFIXES.get(p.suffix.lower())
    if kind is None:
        raise ValueError(f"{what}: unsupported file type {p.suffix!r} for {path!r}; use one of {sorted(DATA_SUFFIXES)}")
    records = _read_json_records(p, what) if kind == "json" else _read_table(p, kind, what)
    if not isinstance(records, list) or not records:
        raise ValueError(f"{what}: {path!r} holds no problems (an empty file?); give one row per problem with "
                         f"{config.prompt_column!r} and {config.answer_column!r} columns")
    where = "line" if p.suffix.lower() == ".jsonl" else "row"
    rows = []
    for i, row in enumerate(records):
        at = f"{what}: {path!r} {where} {i + 1}"
        if not isinstance(row, dict):
            raise ValueError(f"{at} is a {type(row).__name__}, not an object with {config.prompt_column!r} and "
                             f"{config.answer_column!r}")
        for field, col in (("prompt_column", config.prompt_column), ("answer_column", config.answer_column)):
            if col not in row:
                raise ValueError(f"{at} has no {col!r} column (TrainConfig.{field}); its columns: {sorted(row)}")
        prompt, answer = row[config.prompt_column], row[config.answer_column]
        if not (isinstance(prompt, str) or (isinstance(prompt, list) and all(isinstance(m, dict) for m in prompt))):
            raise ValueError(f"{at}: prompt column {config.prompt_column!r} must be a string or a list of chat "
                             f"messages, got {type(prompt).__name__}")
        if answer is None:
            raise ValueError(f"{at}: answer column {config.answer_column!r} is empty")
        out = {k: v for k, v in row.items() if k not in (config.prompt_column, config.answer_column)}
        out["prompt"], out["answer"] = prompt, str(answer)
        rows.append(out)
    return rows


def _prompt_key(prompt: Any) -> str:
    return prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True)


def check_enough_prompts(train_rows: Sequence[dict], config) -> None:
    """One RL step samples ``prompts_per_step`` prompts; fewer distinct ones than that would
    silently train on repeats of the same prompt within a step."""
    distinct = len({_prompt_key(r["prompt"]) for r in train_rows})
    if distinct < config.prompts_per_step:
        source = repr(config.data)
        held = "" if config.eval_data or config.data in ("arithmetic", "multistep") else \
            f" after holding out eval_size = {config.eval_size} for evaluation"
        raise ValueError(f"TrainConfig.prompts_per_step: a step needs {config.prompts_per_step} distinct prompts, "
                         f"but data {source} has {distinct} distinct training prompts{held}; lower "
                         "prompts_per_step or give more problems")


def load_problems(config) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Training and evaluation problems for a :class:`TrainConfig`.

    Built-in data: ``num_problems`` training problems and ``eval_size`` distinct
    evaluation problems whose prompts never occur in training. A file: shuffled with
    ``seed``; the last ``eval_size`` rows are held out unless ``eval_data`` is given.

    Returns:
        ``(train_rows, eval_rows)``, lists of dicts with ``"prompt"`` and ``"answer"``.
    """
    if config.data in ("arithmetic", "multistep", "word-problems"):
        train_rows, eval_rows = _builtin_split(config)
    elif config.eval_data:
        train_rows = _load_file(config.data, config, "TrainConfig.data")
        eval_rows = _load_file(config.eval_data, config, "TrainConfig.eval_data")[: config.eval_size]
    else:
        rows = _load_file(config.data, config, "TrainConfig.data")
        random.Random(config.seed).shuffle(rows)
        if len(rows) <= config.eval_size:
            raise ValueError(f"TrainConfig.eval_size: {config.eval_size} leaves no training rows out of "
                             f"{len(rows)} in {config.data!r}; lower eval_size or give eval_data")
        train_rows, eval_rows = rows[: -config.eval_size], rows[-config.eval_size:]
    check_enough_prompts(train_rows, config)
    return train_rows, eval_rows


class PromptSampler:
    """Epoch-wise shuffled indices over ``n`` prompts; resumable through ``state_dict``.

    Epoch ``e`` uses the permutation seeded by ``(seed, e)``, so the order depends only on
    ``(seed, epoch, position)`` — exactly what a checkpoint stores.
    """

    def __init__(self, n: int, seed: int) -> None:
        if n < 1:
            raise ValueError(f"PromptSampler: needs at least one prompt, got n={n}")
        self.n, self.seed, self.epoch, self.pos = n, seed, 0, 0
        self._perm = self._permutation(0)

    def _permutation(self, epoch: int) -> list[int]:
        perm = list(range(self.n))
        random.Random(self.seed * 1_000_003 + epoch).shuffle(perm)
        return perm

    def next(self, k: int) -> list[int]:
        """The next ``k`` prompt indices (crossing epoch boundaries as needed)."""
        out = []
        while len(out) < k:
            if self.pos == self.n:
                self.epoch, self.pos = self.epoch + 1, 0
                self._perm = self._permutation(self.epoch)
            take = min(k - len(out), self.n - self.pos)
            out.extend(self._perm[self.pos:self.pos + take])
            self.pos += take
        return out

    def state_dict(self) -> dict[str, int]:
        return {"n": self.n, "seed": self.seed, "epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state["n"] != self.n or state["seed"] != self.seed:
            raise ValueError(f"PromptSampler: checkpoint is for n={state['n']}, seed={state['seed']}; "
                             f"this run has n={self.n}, seed={self.seed} (different data or seed?)")
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
        self._perm = self._permutation(self.epoch)
