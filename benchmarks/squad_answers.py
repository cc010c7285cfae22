"""Grounded answers on SQuAD 2.0 (dev, articles 1-8): retrieval, statuses, citations, EM/F1.

Every paragraph is written as a text file and indexed; then, through the same
``Answerer`` the ``answer_with_context`` tool uses:

* 300 answerable questions (a fixed random sample, seed 2026): retrieval hit@5 (the gold
  paragraph among the passages given to the model), answer containment (a normalised gold
  answer appears in an ``answered`` or ``extracted`` answer; an ``unsupported`` or
  ``not_in_context`` result shows no answer, so it holds none), the gold paragraph's share
  of the citations of those answers, citation precision (cited text containing a gold
  answer), SQuAD exact match / F1 (the official normalisation: lower case, no punctuation
  or articles, collapsed spaces; best over the gold answers), and all of it per status;
* 100 unanswerable questions (same seed): the share that comes back ``answered`` or
  ``extracted`` (an answer where there is none), and each status's count;
* ``answered`` precision: of all ``answered`` results, the share that contain a gold answer
  (an unanswerable question answered counts as wrong).

The questions tuned against were drawn from the rest of the file (another seed): these are
held out.

Usage: python benchmarks/squad_answers.py [--answerable 300] [--unanswerable 100] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import re
import shutil
import string
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "squad" / "dev-v2.0-part-a.json"
SEED = 2026


def normalize(text: str) -> str:
    """The SQuAD evaluation script's normalisation."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def f1(prediction: str, gold: str) -> float:
    predicted, expected = normalize(prediction).split(), normalize(gold).split()
    common = collections.Counter(predicted) & collections.Counter(expected)
    overlap = sum(common.values())
    if not predicted or not expected:
        return float(predicted == expected)
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(predicted), overlap / len(expected)
    return 2 * precision * recall / (precision + recall)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--answerable", type=int, default=300)
    parser.add_argument("--unanswerable", type=int, default=100)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()

    from llm_engineering.logs import setup_logging

    setup_logging("WARNING")
    from llm_engineering.config import load_settings
    from llm_engineering.generation.answer import Answerer
    from llm_engineering.generation.models import GeneratorCache
    from llm_engineering.index_store.service import IndexService

    work = Path(tempfile.mkdtemp(prefix="llm-eng-squad-"))
    try:
        docs = work / "docs"
        docs.mkdir()
        answerable, unanswerable = [], []
        for a, article in enumerate(json.loads(args.data.read_text())["data"]):
            for p, paragraph in enumerate(article["paragraphs"]):
                name = f"{a:02}-{p:03}.txt"
                (docs / name).write_text(paragraph["context"])
                for qa in paragraph["qas"]:
                    (unanswerable if qa["is_impossible"] else answerable).append((qa, name))
        rng = random.Random(SEED)
        answerable = rng.sample(answerable, args.answerable)
        unanswerable = rng.sample(unanswerable, args.unanswerable)

        settings = load_settings(data_dir=work / "data")
        index = IndexService(settings)
        index.ingest([docs])
        generators = GeneratorCache(settings)
        answerer = Answerer(generators.get, index, rerank=settings.answer_rerank)
        answerer.answer("warm up", contexts=["warm up"], max_tokens=4)

        hit = 0
        per: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        f1_total = 0.0
        seconds = []
        for qa, name in answerable:
            started = time.perf_counter()
            hits, _ = index.search(qa["question"], top_k=args.top_k, rerank=settings.answer_rerank)
            result = answerer.answer(qa["question"], top_k=args.top_k, max_tokens=args.max_tokens)
            seconds.append(time.perf_counter() - started)
            golds = [answer["text"] for answer in qa["answers"]]
            hit += any(Path(h.path).name == name for h in hits)
            count = per[result.status]
            count["n"] += 1
            count["model_reply_contains"] += any(
                normalize(g) in normalize(result.model_answer) for g in golds
            )
            if result.status not in ("answered", "extracted"):
                continue
            count["contains"] += any(normalize(g) in normalize(result.answer) for g in golds)
            count["exact"] += any(normalize(g) == normalize(result.answer) for g in golds)
            f1_total += max(f1(result.answer, g) for g in golds)
            count["cites_gold_paragraph"] += any(
                Path(c.path or "").name == name for c in result.citations
            )
            for citation in result.citations:
                count["citations"] += 1
                count["citations_right"] += any(
                    normalize(g) in normalize(citation.text) for g in golds
                )
        unanswered: collections.Counter[str] = collections.Counter()
        for qa, _ in unanswerable:
            result = answerer.answer(qa["question"], top_k=args.top_k, max_tokens=args.max_tokens)
            unanswered[result.status] += 1
        n = len(answerable)
        shown = [per[s] for s in ("answered", "extracted")]
        grounded = sum(c["n"] for c in shown)
        answered_all = per["answered"]["n"] + unanswered["answered"]
        report = {
            "settings": {
                "model": generators.get().name,
                "answerable": n,
                "unanswerable": len(unanswerable),
                "seed": SEED,
                "top_k": args.top_k,
                "rerank": settings.answer_rerank,
                "max_tokens": args.max_tokens,
                "temperature": 0.0,
                "n_ctx": settings.llm_n_ctx,
                "chunk_size": settings.chunk_size,
            },
            "retrieval_hit_at_5": round(hit / n, 4),
            "answer_containment": round(sum(c["contains"] for c in shown) / n, 4),
            "gold_paragraph_cited": _share(sum(c["cites_gold_paragraph"] for c in shown), grounded),
            "citation_precision": _share(
                sum(c["citations_right"] for c in shown), sum(c["citations"] for c in shown)
            ),
            "exact_match": round(sum(c["exact"] for c in shown) / n, 4),
            "f1": round(f1_total / n, 4),
            "answered_precision": _share(per["answered"]["contains"], answered_all),
            "unanswerable_answered_or_extracted": round(
                (unanswered["answered"] + unanswered["extracted"]) / len(unanswerable), 4
            ),
            "answerable_by_status": {
                status: {
                    "n": c["n"],
                    "contains_gold": _share(c["contains"], c["n"]),
                    "gold_paragraph_cited": _share(c["cites_gold_paragraph"], c["n"]),
                    "model_reply_contains_gold": _share(c["model_reply_contains"], c["n"]),
                }
                for status, c in sorted(per.items())
            },
            "unanswerable_by_status": dict(sorted(unanswered.items())),
            "seconds_per_question_p50": round(sorted(seconds)[len(seconds) // 2], 2),
        }
        print(json.dumps(report, indent=2))
        generators.close()
        index.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


if __name__ == "__main__":
    main()
