"""Many adapters over one loaded base: memory, round-robin speed, and a first answer's wait.

Five adapters of the default model are five copies of one GGUF LoRA under five names
(byte-identical, but loaded as five separate llama.cpp adapters, so memory and switching
are what five different adapters cost; identical weights give identical tokens, so the
speed comparison decodes the same text either way). The LoRA is ``--adapter FILE``, or
else the newest ``adapter.gguf`` under ``--data-dir``, or else a 2-step training job's.

Each part runs in a fresh process so resident memory is its own:

- memory: RSS with the base loaded (and one answer), then with all five adapters loaded
  (one answer each); the growth against the five files' size (target <= 1.5x). For
  reference, what today's per-copy path (``Llama(lora_path=...)`` per adapter, five
  copies next to the base) grew by.
- speed: answers round-robin across the five against answers with one adapter
  throughout, same question, alternating blocks (target: >= 0.95x the tokens/s).
- first answer: the first token of the first answer with an adapter not yet loaded,
  against one already loaded (target: <= 0.5 s for the default model), and the raw
  ``llama_adapter_lora_init`` of another copy, which is what a first use adds.

Usage: python benchmarks/adapter_serving.py [--adapter FILE] [--answers 20] [--max-tokens 48]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QUESTION = "Who makes the Zorblax 9000?"
# Five for the figures, a sixth answered with cold, a seventh loaded raw (the baseline).
NAMES = [f"bench{i}" for i in range(1, 8)]


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def adapters(folder: Path):  # type: ignore[no-untyped-def]
    from llm_engineering.generation.base import ServedAdapter

    return [ServedAdapter(f"{name}@1", folder / f"{name}.gguf") for name in NAMES]


def generator(max_mb: float = 1024.0):  # type: ignore[no-untyped-def]
    from llm_engineering.generation.llamacpp import LlamaCppGenerator

    return LlamaCppGenerator(
        "smollm2-135m-instruct", n_ctx=1024, adapter_budget_bytes=int(max_mb * 2**20)
    )


def ask(gen, adapter=None, max_tokens: int = 48):  # type: ignore[no-untyped-def]
    messages = [{"role": "user", "content": QUESTION}]
    return gen.chat(messages, max_tokens=max_tokens, temperature=0.0, adapter=adapter)


def part_memory(folder: Path) -> dict[str, float]:
    gen = generator()
    ask(gen, max_tokens=8)
    base = rss_bytes()
    five = adapters(folder)[:5]
    for adapter in five:
        ask(gen, adapter, max_tokens=8)
    loaded = rss_bytes()
    files = sum(adapter.size for adapter in five)
    return {
        "rss_base_mb": base / 2**20,
        "rss_base_and_five_mb": loaded / 2**20,
        "growth_mb": (loaded - base) / 2**20,
        "five_files_mb": files / 2**20,
        "growth_over_files": (loaded - base) / files,
    }


def part_copies(folder: Path) -> dict[str, float]:
    """Today's path: one ``Llama(lora_path=...)`` per adapter, next to the base."""
    import llama_cpp

    from llm_engineering.generation.llamacpp import resolve_gguf

    model = str(resolve_gguf("smollm2-135m-instruct"))
    messages = [{"role": "user", "content": QUESTION}]
    base = llama_cpp.Llama(model, n_ctx=1024, verbose=False)
    base.create_chat_completion(messages=messages, max_tokens=8, temperature=0.0)
    before = rss_bytes()
    copies = []
    for adapter in adapters(folder)[:5]:
        copy = llama_cpp.Llama(model, n_ctx=1024, lora_path=str(adapter.lora), verbose=False)
        copy.create_chat_completion(messages=messages, max_tokens=8, temperature=0.0)
        copies.append(copy)
    return {"per_copy_growth_mb": (rss_bytes() - before) / 2**20}


def part_speed(folder: Path, answers: int, max_tokens: int) -> dict[str, float]:
    gen = generator()
    every = adapters(folder)
    five = every[:5]
    for adapter in five:  # load them all first: this part measures switching, not loading
        ask(gen, adapter, max_tokens=4)
    tokens = {"one": 0, "round_robin": 0}
    seconds = {"one": 0.0, "round_robin": 0.0}
    first: dict[str, list[float]] = {"one": [], "round_robin": []}
    texts = set()
    block = len(five)
    for start in range(0, answers, block):
        modes = ("one", "round_robin") if (start // block) % 2 == 0 else ("round_robin", "one")
        for mode in modes:
            for i in range(block):
                adapter = five[0] if mode == "one" else five[i % len(five)]
                began = time.perf_counter()
                completion = ask(gen, adapter, max_tokens)
                seconds[mode] += time.perf_counter() - began
                tokens[mode] += completion.completion_tokens
                first[mode].append(completion.first_token_ms or 0.0)
                texts.add(completion.text)
    one = tokens["one"] / seconds["one"]
    robin = tokens["round_robin"] / seconds["round_robin"]

    loaded_first = [ask(gen, five[0], max_tokens=1).first_token_ms or 0.0 for _ in range(5)]
    began = time.perf_counter()
    fresh = ask(gen, every[5], max_tokens=1)  # never loaded before
    fresh_total = (time.perf_counter() - began) * 1000
    import llama_cpp

    began = time.perf_counter()
    handle = llama_cpp.llama_adapter_lora_init(
        gen._llm._model.model, str(every[6].lora).encode()
    )  # what a first use adds: llama.cpp reading the LoRA onto the model
    raw_load_ms = (time.perf_counter() - began) * 1000
    llama_cpp.llama_adapter_lora_free(handle)
    return {
        "answers_each": answers,
        "tokens_per_s_one_adapter": one,
        "tokens_per_s_round_robin": robin,
        "round_robin_over_one": robin / one,
        "first_token_ms_p50_one_adapter": statistics.median(first["one"]),
        "first_token_ms_p50_round_robin": statistics.median(first["round_robin"]),
        "distinct_texts": len(texts),
        "first_token_ms_loaded_adapter_p50": statistics.median(loaded_first),
        "first_token_ms_new_adapter": fresh.first_token_ms or 0.0,
        "first_answer_ms_new_adapter": fresh_total,
        "raw_lora_init_ms": raw_load_ms,
    }


def find_adapter(data_dir: Path | None) -> Path:
    if data_dir is not None:
        found = sorted(
            (data_dir / "adapters").glob("*/*/adapter.gguf"), key=lambda p: p.stat().st_mtime
        )
        if found:
            return found[-1]
    return train_cheap()


def train_cheap() -> Path:
    """A 2-step job of the default model (its weights barely move; its size is the point)."""
    from llm_engineering.adapters.service import TrainingService
    from llm_engineering.config import Settings

    data = Path(tempfile.mkdtemp(prefix="llm-eng-bench-adapter-"))
    training = TrainingService(Settings(data_dir=data))
    training.start_runner()
    records = [
        {
            "messages": [
                {"role": "user", "content": QUESTION},
                {"role": "assistant", "content": "Quintor Labs."},
            ]
        }
    ] * 8
    job = training.start_job("bench", records=records, hyperparameters={"max_steps": 2})
    view = training.follow(job.id, timeout=1800)
    training.close()
    if view.job.status != "succeeded":
        raise SystemExit(f"the 2-step job did not succeed: {view.job.status} {view.job.error}")
    return training.adapter("bench").gguf


def run_part(part: str, folder: Path, *extra: str) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, "--part", part, "--folder", str(folder), *extra],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return dict(json.loads(output.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--adapter", type=Path, help="a GGUF LoRA of the default model")
    parser.add_argument("--data-dir", type=Path, help="take the newest adapter.gguf under it")
    parser.add_argument("--answers", type=int, default=20, help="answers per mode (speed)")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--part", choices=["memory", "copies", "speed"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    from llm_engineering.logs import setup_logging

    setup_logging("WARNING")
    if args.part:
        parts = {
            "memory": lambda: part_memory(args.folder),
            "copies": lambda: part_copies(args.folder),
            "speed": lambda: part_speed(args.folder, args.answers, args.max_tokens),
        }
        print(json.dumps({k: round(v, 3) for k, v in parts[args.part]().items()}))
        return

    source = args.adapter or find_adapter(args.data_dir)
    folder = Path(tempfile.mkdtemp(prefix="llm-eng-bench-loras-"))
    for name in NAMES:
        shutil.copy(source, folder / f"{name}.gguf")
    results: dict[str, object] = {
        "adapter": str(source),
        "adapter_mb": round(source.stat().st_size / 2**20, 2),
    }
    results["memory"] = run_part("memory", folder)
    results["today_per_copy"] = run_part("copies", folder)
    results["speed"] = run_part(
        "speed", folder, "--answers", str(args.answers), "--max-tokens", str(args.max_tokens)
    )
    print(json.dumps(results, indent=2))
    shutil.rmtree(folder)


if __name__ == "__main__":
    main()
