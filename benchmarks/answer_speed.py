"""Generation speed of ``answer_with_context`` against raw llama.cpp, same prompt, same process.

For 20 SQuAD questions (each with its paragraph and two others as caller-given contexts,
so retrieval is out of the picture), the answer path that the MCP tool runs (packing,
streaming with a token callback, citation reading) is timed against a plain
``Llama.create_chat_completion`` on the identical messages with the same loaded model,
alternating which goes first. Both start from a clean context and decode greedily, so
they produce the same tokens.

Reported: generated tokens/s over the whole call (prompt processing included) and after
the first token (decoding), and the time to the first token.

Usage: python benchmarks/answer_speed.py [--questions 20] [--max-tokens 128]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "squad" / "dev-v2.0-part-a.json"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()

    from llm_engineering.logs import setup_logging

    setup_logging("WARNING")
    import tempfile

    from llm_engineering.config import load_settings
    from llm_engineering.generation.answer import Answerer
    from llm_engineering.generation.models import GeneratorCache
    from llm_engineering.generation.prompts import Block, grounded_messages, pack_blocks

    paragraphs = [
        p for article in json.loads(args.data.read_text())["data"] for p in article["paragraphs"]
    ]
    rng = random.Random(7)
    cases = []
    for paragraph in rng.sample(paragraphs, args.questions):
        question = next(q["question"] for q in paragraph["qas"] if not q["is_impossible"])
        others = [p["context"] for p in rng.sample(paragraphs, 2) if p is not paragraph]
        cases.append((question, [paragraph["context"], *others]))

    settings = load_settings(data_dir=Path(tempfile.mkdtemp(prefix="llm-eng-speed-")))
    generators = GeneratorCache(settings)
    generator = generators.get()
    llm = generator._llm  # type: ignore[attr-defined]
    answerer = Answerer(generators.get, None)
    answerer.answer("warm up", contexts=["warm up"], max_tokens=8)

    ours_total, ours_decode, ours_ttft, raw_total, raw_decode, raw_ttft = [], [], [], [], [], []
    tokens_ours = tokens_raw = 0
    for i, (question, contexts) in enumerate(cases):
        blocks, _ = pack_blocks(
            [Block(n + 1, text) for n, text in enumerate(contexts)],
            question,
            generator,
            args.max_tokens,
        )
        messages = grounded_messages(question, blocks)

        def ours(question: str = question, contexts: list[str] = contexts) -> None:
            nonlocal tokens_ours
            result = answerer.answer(
                question, contexts=contexts, max_tokens=args.max_tokens, on_token=lambda _: None
            )
            tokens_ours += result.completion_tokens
            ours_total.append(result.completion_tokens / (result.took_ms / 1000))
            ours_decode.append(result.tokens_per_s)
            ours_ttft.append(result.first_token_ms or 0.0)

        def raw(messages: list = messages) -> None:  # type: ignore[type-arg]
            nonlocal tokens_raw
            llm.reset()
            started = time.perf_counter()
            first = None
            count = 0
            for chunk in llm.create_chat_completion(
                messages=messages, max_tokens=args.max_tokens, temperature=0.0, stream=True
            ):
                if chunk["choices"][0].get("delta", {}).get("content"):
                    count += 1
                    first = first or time.perf_counter()
            end = time.perf_counter()
            tokens_raw += count
            raw_total.append(count / (end - started))
            raw_decode.append((count - 1) / (end - first) if first and count > 1 else 0.0)
            raw_ttft.append(((first or end) - started) * 1000)

        for run in (ours, raw) if i % 2 == 0 else (raw, ours):
            run()

    results = {
        "model": generator.name,
        "questions": len(cases),
        "max_tokens": args.max_tokens,
        "generated_tokens": {"answer_with_context": tokens_ours, "raw": tokens_raw},
        "tokens_per_s_overall": {
            "answer_with_context": round(statistics.median(ours_total), 1),
            "raw": round(statistics.median(raw_total), 1),
        },
        "tokens_per_s_decoding": {
            "answer_with_context": round(statistics.median(ours_decode), 1),
            "raw": round(statistics.median(raw_decode), 1),
        },
        "first_token_ms_p50": {
            "answer_with_context": round(statistics.median(ours_ttft), 1),
            "raw": round(statistics.median(raw_ttft), 1),
        },
    }
    results["ratio_overall"] = round(
        results["tokens_per_s_overall"]["answer_with_context"]
        / results["tokens_per_s_overall"]["raw"],
        3,
    )
    results["ratio_decoding"] = round(
        results["tokens_per_s_decoding"]["answer_with_context"]
        / results["tokens_per_s_decoding"]["raw"],
        3,
    )
    print(json.dumps(results, indent=2))
    generators.close()


if __name__ == "__main__":
    main()
