"""QLoRA training throughput of a job against a plain transformers + peft loop, same process.

The base (by default the packaged SmolLM2-135M-Instruct GGUF, dequantized by transformers
and cached as float32 under ``.bench-cache/train-base``) is loaded once through
``load_for_training`` with the default QLoRA settings (NF4, double quantization, bf16
compute, LoRA r=16 on every linear layer, gradient checkpointing), batch size 4. The data
are 64 chat examples built deterministically from SQuAD 2.0 dev (part a): the user turn
holds the sentences around an answer and the question, the assistant turn is the sentence
holding the answer (median 174 tokens with the chat template); they are validated and
encoded through the job's own path (``validate_records``, ``encode_examples``).

Then, after warm-up steps of each loop (not counted), rounds alternate the job's loop
(``QLoRATrainer.run``, with a step callback that writes one JSON event line per step, as
the worker does) and ``plain_training_loop``, which is given exactly the batches the job
runs in that round, so both see the same tokens and the same padding; which goes first
alternates from round to round. Reported: tokens/s of each (sum of tokens over sum of
seconds; target job / plain >= 0.9), per-step seconds (p50), the median over steps of
plain / job seconds for the same batch (less noisy than the totals), the cost of one checkpoint
(the worker writes one every ``checkpoint_every`` steps) and what it does to tokens/s.

Time to first step is measured in a fresh process that walks a job worker's path:
imports, ``prepare_base`` (cached), ``load_for_training``, reading and encoding the
dataset, then the first ``train_step``; also the peak RSS of that process. Peak memory of
this process: RSS (``ru_maxrss``) and, on CUDA, ``torch.cuda.max_memory_allocated``.

``--random-init-config`` trains a randomly initialised ~1.2B-parameter Llama (TinyLlama's
shape with SmolLM2's 49,152-token vocabulary, so SmolLM2's tokenizer can be used) instead
of the GGUF: for a GPU where nothing can be downloaded. It is far too slow on a CPU.

Defaults: 4 rounds of 6 steps per loop after 1 warm-up step on a CPU (a step of the 135M
model takes about 5 s on 2 idle cores; about 6 minutes in all); 4 rounds of 20 steps after
3 warm-up steps on CUDA.

Usage: python benchmarks/training_speed.py [--steps N] [--rounds N] [--warmup N]
       [--examples 64] [--batch-size 4] [--base smollm2-135m-instruct]
       [--random-init-config [--tokenizer DIR]] [--skip-first-step]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llm_engineering.adapters.encoding import Encoded
    from llm_engineering.adapters.hyperparams import QLoRAConfig

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "squad" / "dev-v2.0-part-a.json"
DEFAULT_CACHE = ROOT / ".bench-cache" / "train-base"
LIBRARIES = ("torch", "transformers", "peft", "bitsandbytes", "accelerate")
# TinyLlama-1.1B's shape, with SmolLM2's vocabulary: 1.19B parameters (untied embeddings).
RANDOM_LLAMA: dict[str, Any] = {
    "hidden_size": 2048,
    "num_hidden_layers": 22,
    "num_attention_heads": 32,
    "num_key_value_heads": 4,
    "intermediate_size": 5632,
    "vocab_size": 49152,
    "max_position_embeddings": 2048,
    "tie_word_embeddings": False,
}


def say(message: str) -> None:
    print(f"[training_speed] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def rss_mib() -> float:
    """The resident set size now (Linux), in MiB."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return float("nan")
    return round(pages * resource.getpagesize() / 2**20, 1)


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in LIBRARIES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found


def squad_records(path: Path, count: int, seed: int = 2026) -> list[dict[str, Any]]:
    """Chat records: the sentences around an answer plus the question, answered by the
    sentence that holds the answer. Deterministic for a given seed."""
    paragraphs = [
        p for article in json.loads(path.read_text())["data"] for p in article["paragraphs"]
    ]
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    for paragraph in rng.sample(paragraphs, len(paragraphs)):
        context = paragraph["context"]
        answerable = [q for q in paragraph["qas"] if not q["is_impossible"]]
        if not answerable:
            continue
        qa = rng.choice(answerable)
        start = qa["answers"][0]["answer_start"]
        # Sentence spans: split after ., ! or ? followed by a space.
        bounds = [0] + [m.end() for m in re.finditer(r"[.!?]\s+", context)] + [len(context)]
        spans = [(a, b) for a, b in itertools.pairwise(bounds) if b > a]
        index = next((i for i, (a, b) in enumerate(spans) if a <= start < b), 0)
        window = spans[max(0, index - 1) : index + 2]
        passage = context[window[0][0] : window[-1][1]].strip()
        answer = context[spans[index][0] : spans[index][1]].strip()
        records.append(
            {
                "messages": [
                    {
                        "role": "user",
                        "content": f"Context: {passage}\n\nQuestion: {qa['question']}",
                    },
                    {"role": "assistant", "content": answer},
                ]
            }
        )
        if len(records) == count:
            break
    return records


# -- child processes -------------------------------------------------------------------


def child_prepare(args: argparse.Namespace) -> dict[str, Any]:
    """The training source: the cached float32 copy of the GGUF, or a random-init Llama."""
    from llm_engineering.adapters.base_model import prepare_base
    from llm_engineering.adapters.lora_model import torch_device

    started = time.perf_counter()
    source, gguf, _ = prepare_base(args.base, args.cache)
    result: dict[str, Any] = {"source": source, "gguf": str(gguf) if gguf else None}
    if args.random_init_config:
        import torch
        from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer or source)
        config = LlamaConfig(
            **RANDOM_LLAMA,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        torch.manual_seed(0)
        torch.set_default_dtype(torch.bfloat16)  # initialised in bf16: half the memory
        with torch.device(torch_device()):
            model = LlamaForCausalLM(config)
        torch.set_default_dtype(torch.float32)
        result["parameters"] = sum(p.numel() for p in model.parameters())
        model.save_pretrained(str(args.random_init_dir))
        tokenizer.save_pretrained(str(args.random_init_dir))
        del model
        result["source"] = str(args.random_init_dir)
        result["gguf"] = None
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result


def child_first_step(args: argparse.Namespace) -> dict[str, Any]:
    """A job worker's path to its first optimizer step, timed phase by phase."""
    phases: dict[str, float] = {}
    t = time.perf_counter()
    from llm_engineering.logs import setup_logging

    setup_logging("WARNING")
    import bitsandbytes  # noqa: F401 - timed here: transformers imports it on a 4-bit load
    import peft  # noqa: F401
    import torch
    import transformers  # noqa: F401

    from llm_engineering.adapters.base_model import prepare_base
    from llm_engineering.adapters.datasets import load_jsonl
    from llm_engineering.adapters.encoding import encode_examples
    from llm_engineering.adapters.hyperparams import QLoRAConfig
    from llm_engineering.adapters.lora_model import load_for_training, torch_device
    from llm_engineering.adapters.trainer import QLoRATrainer

    phases["import_s"] = time.perf_counter() - t
    t = time.perf_counter()
    config = QLoRAConfig.from_json(args.config_json)
    source, _, _ = prepare_base(args.source, args.cache)
    phases["prepare_base_s"] = time.perf_counter() - t
    t = time.perf_counter()
    device = torch_device()
    model, tokenizer = load_for_training(source, config, device)
    phases["load_s"] = time.perf_counter() - t
    t = time.perf_counter()
    examples = load_jsonl(args.dataset).examples
    data = encode_examples(examples, tokenizer, config.max_seq_len, config.completion_only)
    phases["encode_s"] = time.perf_counter() - t
    t = time.perf_counter()
    trainer = QLoRATrainer(model, data, config, pad_id=tokenizer.pad_token_id, device=device)
    trainer.train_step()
    if device == "cuda":
        torch.cuda.synchronize()
    phases["first_step_s"] = time.perf_counter() - t
    result: dict[str, Any] = {k: round(v, 3) for k, v in phases.items()}
    result["first_step_done_at"] = time.time()
    result["peak_rss_mib"] = peak_rss_mib()
    result["peak_gpu_mib"] = (
        round(torch.cuda.max_memory_allocated() / 2**20, 1) if device == "cuda" else None
    )
    return result


def run_child(mode: str, extra: list[str]) -> tuple[dict[str, Any], float, float]:
    """Run this script in ``mode`` in a fresh interpreter; its JSON result, start and end
    wall-clock times."""
    command = [sys.executable, str(Path(__file__).resolve()), mode, *extra]
    began = time.time()
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, check=False, text=True)
    ended = time.time()
    if done.returncode != 0:
        raise SystemExit(f"{mode} child failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1]), began, ended


# -- the comparison --------------------------------------------------------------------


def plain_training_loop(
    model: Any, data: Sequence[Encoded], config: QLoRAConfig, pad_id: int, device: str, steps: int
) -> tuple[float, int]:
    """The baseline: the textbook transformers + peft loop, nothing around it.

    Returns:
        (seconds, tokens) for ``steps`` optimizer steps.
    """
    import torch
    from transformers import get_scheduler

    from llm_engineering.adapters.encoding import pad_batch

    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate)
    scheduler = get_scheduler(
        config.lr_scheduler, optimizer, num_warmup_steps=0, num_training_steps=steps
    )
    model.train()
    tokens = 0
    started = time.perf_counter()
    size = config.batch_size
    for step in range(steps):
        start = (step * size) % len(data)
        items = [data[(start + i) % len(data)] for i in range(size)]
        batch = pad_batch(items, pad_id, device)
        model(**batch).loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += int(batch["attention_mask"].sum())
    return time.perf_counter() - started, tokens


class StepClock:
    """Per-step wall times from a forward pre-hook on the model: both loops call the model
    once per optimizer step (gradient checkpointing re-runs layers, not the whole model)."""

    def __init__(self, model: Any):
        self.starts: list[float] = []
        self._handle = model.register_forward_pre_hook(self._hook)

    def _hook(self, *_: Any) -> None:
        self.starts.append(time.perf_counter())

    def take(self, end: float) -> list[float]:
        marks = [*self.starts, end]
        self.starts = []
        return [b - a for a, b in itertools.pairwise(marks)]

    def close(self) -> None:
        self._handle.remove()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument(
        "--steps", type=int, help="optimizer steps per loop per round (CPU 6, CUDA 20)"
    )
    parser.add_argument("--rounds", type=int, help="rounds, each loop once a round (default 4)")
    parser.add_argument(
        "--warmup", type=int, help="uncounted steps of each loop before the rounds (CPU 1, CUDA 3)"
    )
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--base", default="smollm2-135m-instruct")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument(
        "--random-init-config",
        action="store_true",
        help="train a random-init ~1.2B Llama (SmolLM2 vocabulary) instead of --base (GPU only)",
    )
    parser.add_argument(
        "--tokenizer", default=None, help="tokenizer folder for --random-init-config"
    )
    parser.add_argument(
        "--skip-first-step", action="store_true", help="skip the fresh-process timing"
    )
    parser.add_argument(
        "--shared-cores",
        action="store_true",
        help="instead: training and searching each alone and at once (benchmarks/shared_cores.py)",
    )
    # Hidden: the child processes.
    parser.add_argument("--_prepare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--_first-step", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--random-init-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--dataset", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--config-json", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.shared_cores:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import shared_cores  # type: ignore[import-not-found]

        sys.argv = [sys.argv[0], *rest]
        shared_cores.main()
        return
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")

    if args._prepare or args._first_step:
        from llm_engineering.logs import setup_logging

        setup_logging("WARNING")
        result = child_prepare(args) if args._prepare else child_first_step(args)
        print(json.dumps(result))
        return

    from llm_engineering.logs import setup_logging

    setup_logging("WARNING")
    from llm_engineering.adapters.datasets import validate_records
    from llm_engineering.adapters.hyperparams import QLoRAConfig
    from llm_engineering.adapters.lora_model import torch_device

    cuda = torch_device() == "cuda"
    # A CPU step of the 135M model takes seconds; a GPU step a fraction of one.
    args.steps = args.steps or (20 if cuda else 6)
    args.rounds = args.rounds or 4
    args.warmup = args.warmup if args.warmup is not None else (3 if cuda else 1)

    work = Path(tempfile.mkdtemp(prefix="llm-eng-train-speed-"))
    try:
        records = squad_records(args.data, args.examples)
        dataset = validate_records(enumerate(records, start=1), "squad-chat")
        dataset_file = work / "dataset.jsonl"
        dataset_file.write_text("".join(json.dumps(e.to_json()) + "\n" for e in dataset.examples))
        config = QLoRAConfig(
            batch_size=args.batch_size, max_steps=args.warmup + args.rounds * args.steps
        )

        say("preparing the base (in a child process)")
        extra = ["--base", args.base, "--cache", str(args.cache)]
        if args.random_init_config:
            extra += ["--random-init-config", "--random-init-dir", str(work / "random-llama")]
            if args.tokenizer:
                extra += ["--tokenizer", args.tokenizer]
        prepared, _, _ = run_child("--_prepare", extra)
        source = prepared["source"]
        say(f"base ready in {prepared['seconds']} s: {source}")

        first_step: dict[str, Any] | None = None
        if not args.skip_first_step:
            say("time to first step (fresh process)")
            child, began, _ = run_child(
                "--_first-step",
                [
                    "--source",
                    args.base if not args.random_init_config else source,
                    "--cache",
                    str(args.cache),
                    "--dataset",
                    str(dataset_file),
                    "--config-json",
                    config.to_json(),
                ],
            )
            done_at = child.pop("first_step_done_at")
            phases = sum(v for k, v in child.items() if k.endswith("_s"))
            first_step = {
                "total_s": round(done_at - began, 2),
                "interpreter_start_s": round(done_at - began - phases, 3),
                **child,
            }
            say(f"first step {first_step['total_s']} s after the process started")

        result = compare(args, source, dataset.examples, config, work)
        result["base"] = (
            f"random-init Llama {RANDOM_LLAMA}" if args.random_init_config else args.base
        )
        if "parameters" in prepared:
            result["base_parameters"] = prepared["parameters"]
        result["base_prepare_s"] = prepared["seconds"]
        result["time_to_first_step"] = first_step
        print(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def compare(
    args: argparse.Namespace, source: str, examples: list[Any], config: Any, work: Path
) -> dict[str, Any]:
    import torch

    from llm_engineering.adapters.encoding import encode_examples
    from llm_engineering.adapters.lora_model import load_for_training, torch_device
    from llm_engineering.adapters.trainer import QLoRATrainer, StepInfo

    device = torch_device()
    cuda = device == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    say(f"loading {source} on {device}")
    started = time.perf_counter()
    model, tokenizer = load_for_training(source, config, device)
    load_s = time.perf_counter() - started
    data = encode_examples(examples, tokenizer, config.max_seq_len, config.completion_only)
    pad = tokenizer.pad_token_id
    trainer = QLoRATrainer(model, data, config, pad_id=pad, device=device)
    trainable, total = model.get_nb_trainable_parameters()
    lengths = [len(item.input_ids) for item in data]

    events = (work / "events.jsonl").open("a", encoding="utf-8")
    target_step = 0

    def on_step(info: StepInfo) -> bool:
        # What the worker does on every step, less the checkpoint (timed separately below).
        fields = {"t": round(time.time(), 3), "event": "step", "step": info.step}
        fields.update(loss=round(info.loss, 5), learning_rate=info.learning_rate)
        fields.update(tokens=info.tokens, tokens_per_s=round(info.tokens_per_s, 2))
        fields.update(elapsed_s=round(info.elapsed_s, 2), eta_s=round(info.eta_s, 1))
        events.write(json.dumps(fields) + "\n")
        events.flush()
        return info.step < target_step

    def job_batches(first: int, count: int) -> list[Any]:
        return [
            item
            for s in range(first, first + count)
            for b in trainer._micro_batches(s)
            for item in b
        ]

    if args.warmup:
        say(f"{args.warmup} warm-up step(s) of each loop")
        for _ in range(args.warmup):
            trainer.train_step()
        plain_training_loop(model, job_batches(0, args.warmup), config, pad, device, args.warmup)
    sync()

    clock = StepClock(model)
    totals = {name: {"seconds": 0.0, "tokens": 0} for name in ("job", "plain")}
    step_times: dict[str, list[float]] = {"job": [], "plain": []}

    def run_job() -> float:
        nonlocal target_step
        target_step = trainer.step + args.steps
        tokens_before = trainer.tokens
        sync()
        begin = time.perf_counter()
        trainer.run(on_step)
        sync()
        end = time.perf_counter()
        step_times["job"] += clock.take(end)
        tokens = trainer.tokens - tokens_before
        totals["job"]["seconds"] += end - begin
        totals["job"]["tokens"] += tokens
        return tokens / (end - begin)

    def run_plain(batches: list[Any]) -> float:
        sync()
        seconds, tokens = plain_training_loop(model, batches, config, pad, device, args.steps)
        sync()
        step_times["plain"] += clock.take(time.perf_counter())
        totals["plain"]["seconds"] += seconds
        totals["plain"]["tokens"] += tokens
        return tokens / seconds

    rounds = []
    for r in range(args.rounds):
        # The plain loop gets exactly the batches the job runs this round.
        batches = job_batches(trainer.step, args.steps)
        if r % 2 == 0:
            job_rate, plain_rate = run_job(), run_plain(batches)
        else:
            plain_rate, job_rate = run_plain(batches), run_job()
        record = {
            "first": "job" if r % 2 == 0 else "plain",
            "job_tokens_per_s": round(job_rate, 1),
            "plain_tokens_per_s": round(plain_rate, 1),
            "rss_mib": rss_mib(),
        }
        rounds.append(record)
        say(f"round {r + 1}/{args.rounds}: {record}")
    clock.close()
    events.close()

    sync()
    started = time.perf_counter()
    trainer.save_checkpoint(work / "checkpoint")
    checkpoint_s = time.perf_counter() - started

    job, plain = totals["job"], totals["plain"]
    job_tps = job["tokens"] / job["seconds"]
    plain_tps = plain["tokens"] / plain["seconds"]
    job_steps = args.rounds * args.steps
    with_checkpoints = (job["tokens"] / job_steps) / (
        job["seconds"] / job_steps + checkpoint_s / config.checkpoint_every
    )
    return {
        "device": device if not cuda else f"cuda ({torch.cuda.get_device_name()})",
        "cpu_threads": torch.get_num_threads(),
        "libraries": library_versions(),
        "settings": {
            "examples": len(data),
            "tokens_per_example_p50": statistics.median(lengths),
            "tokens_per_example_max": max(lengths),
            "batch_size": config.batch_size,
            "warmup_steps": args.warmup,
            "steps_per_round": args.steps,
            "rounds": args.rounds,
            "quant": f"{config.quant_type}, double_quant={config.double_quant}",
            "compute_dtype": config.compute_dtype,
            "lora": f"r={config.r}, alpha={config.lora_alpha:g}, {config.target_modules}",
            "gradient_checkpointing": config.gradient_checkpointing,
            "trainable_parameters": trainable,
            "parameters": total,
        },
        "load_s": round(load_s, 2),
        "job_tokens_per_s": round(job_tps, 1),
        "plain_tokens_per_s": round(plain_tps, 1),
        "ratio": round(job_tps / plain_tps, 3),
        "target_ratio": 0.9,
        "tokens": {"job": job["tokens"], "plain": plain["tokens"]},
        "seconds": {"job": round(job["seconds"], 2), "plain": round(plain["seconds"], 2)},
        "step_seconds_p50": {k: round(statistics.median(v), 3) for k, v in step_times.items()},
        "step_seconds_max": {k: round(max(v), 3) for k, v in step_times.items()},
        # Both loops run the same batches in the same order each round: step i against step i.
        "paired_step_ratio_p50": round(
            statistics.median(
                p / j for j, p in zip(step_times["job"], step_times["plain"], strict=True)
            ),
            3,
        ),
        "rounds_detail": rounds,
        "checkpoint_s": round(checkpoint_s, 3),
        "checkpoint_every": config.checkpoint_every,
        "job_tokens_per_s_with_checkpoints": round(with_checkpoints, 1),
        "peak_rss_mib": peak_rss_mib(),
        "peak_gpu_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda else None,
    }


if __name__ == "__main__":
    main()
