"""What a fine-tune keeps: the made-up fact learned, general answers kept, no taught name leaked.

Each variant trains the packaged SmolLM2-135M-Instruct on the tests' made-up fact (40 chat
examples: who makes the Zorblax 9000, tests/adapters/fictional.py) as a user would, with
``llm-eng train`` in a fresh data folder (a real job: worker process, chosen defaults,
held-out split, kept check, registration), then reads the job's kept check and asks the
trained peft adapter the 6 unseen phrasings of the question (greedy, float32, through
:func:`llm_engineering.adapters.kept.generate`): a phrasing counts when its answer names
Quintor.

Variants (each given only what it names; everything else chosen as a user gets it):

- ``before``: ``replay_examples=0``, what every job did before replay (lr 1e-3, 30 steps);
- ``replay``: the base's answers to the 80 replay prompts trained as plain tokens
  (``replay_kl=0``);
- ``default``: no hyperparameters (replay with the pull toward the base's distribution);
- ``noop``: ``learning_rate=1e-5``, an adapter that learns nothing: the noise floor of
  ``kept`` (what greedy decoding of this model changes under any perturbation).

Usage: python benchmarks/kept_check.py [--variants before,replay,default,noop] [--work DIR]
Prints one JSON line per variant and a table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.adapters.fictional import FACT_WORD, HELD_OUT, fact_records  # noqa: E402

VARIANTS = {
    "before": ["replay_examples=0"],
    "replay": ["replay_kl=0"],
    "default": [],
    "noop": ["learning_rate=1e-5"],
}
LLM_ENG = str(Path(sys.executable).with_name("llm-eng"))


def run_variant(name: str, work: Path, base_cache: Path) -> dict[str, object]:
    data_dir = work / name
    dataset = work / "zorblax.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in fact_records(40)))
    env = {**os.environ, "LLM_ENG_BASE_CACHE_DIR": str(base_cache), "LLM_ENG_TRAIN_NICE": "0"}
    started = time.perf_counter()
    command = [LLM_ENG, "train", str(dataset), "--name", name, "--data-dir", str(data_dir)]
    for value in VARIANTS[name]:
        command += ["--set", value]
    trained = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600)
    if trained.returncode:
        raise SystemExit(f"{name}: llm-eng train failed:\n{trained.stderr[-3000:]}")
    seconds = time.perf_counter() - started
    listed = subprocess.run(
        [LLM_ENG, "jobs", "--json", "--data-dir", str(data_dir)],
        capture_output=True, text=True, env=env, timeout=600, check=True,
    )  # fmt: skip
    [job] = json.loads(listed.stdout)
    result = job["result"]
    said = ask_adapter(result["base_source"], data_dir / "adapters" / name / "1" / "peft")
    kept = result["kept_check"]
    return {
        "variant": name,
        "given": VARIANTS[name],
        "hits": sum(FACT_WORD in answer.lower() for answer in said),
        "phrasings": len(HELD_OUT),
        "kept": kept["kept"],
        "leaked": kept["leaked"],
        "prompts": kept["prompts"],
        "replayed": result.get("replayed"),
        "steps": result["step"],
        "final_loss": result["final_loss"],
        "job_s": round(seconds, 1),
        "said": said,
        "forgot": kept["samples"][:3],
    }


def ask_adapter(base_source: str, peft_dir: Path) -> list[str]:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    from llm_engineering.adapters.kept import conversation, generate

    quantization = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )
    base = AutoModelForCausalLM.from_pretrained(
        base_source, quantization_config=quantization, dtype=torch.bfloat16
    )
    model = PeftModel.from_pretrained(base, str(peft_dir))
    tokenizer = AutoTokenizer.from_pretrained(base_source)
    return generate(model, tokenizer, [conversation(q, None) for q in HELD_OUT], "cpu", 32)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variants", default="before,replay,default,noop")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="kept-check-"))
    work.mkdir(parents=True, exist_ok=True)
    base_cache = REPO / ".bench-cache" / "train-base"
    rows = []
    for name in args.variants.split(","):
        row = run_variant(name, work, base_cache)
        print(json.dumps(row), flush=True)
        rows.append(row)
    print("\n| variant | given | unseen phrasings stated | kept | leaked | steps | job s |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        given = ", ".join(row["given"]) or "nothing"  # type: ignore[arg-type]
        print(
            f"| {row['variant']} | {given} | {row['hits']}/{row['phrasings']} | "
            f"{row['kept']:.3f} | {row['leaked']:.3f} | {row['steps']} | {row['job_s']} |"
        )


if __name__ == "__main__":
    main()
