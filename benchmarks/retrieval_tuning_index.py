"""Retrieval tuning through the product (issue 33), on SciFact: the index, the tuner, its shadow
build, the switch, and every search mode afterwards.

``benchmarks/retrieval_tuning.py`` measures the model alone (exact cosine over whole
abstracts). This one runs what a user runs: SciFact indexed as Markdown files by the normal
ingestion (``llm-eng eval retrieval``'s cached index, copied so the cache stays untuned),
:class:`RetrievalTuner` with the project's defaults on pairs written as a user would write
them (JSONL, positives as file paths), its held-out split and decision, the re-embedding of
every chunk into the new collection, and then dense, hybrid and hybrid+rerank searches of the
score half's claims, against the untuned index in the same process.

The claims split as in ``retrieval_tuning.py`` (sha256 of the id): ``train-half`` tunes on the
tune half's claims, ``titles`` on no user pairs at all (titles and headings from the corpus).
The score half is never seen by either.

Usage: python benchmarks/retrieval_tuning_index.py [--variant train-half|titles]
       [--set NAME=VALUE ...] [--data ../shared/data/scifact]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "scifact"
MODES = ("dense", "hybrid", "hybrid+rerank")


def say(message: str) -> None:
    print(f"[retrieval_tuning_index] {message}", file=sys.stderr, flush=True)


def evaluate(index: Any, queries: dict[str, str], qrels: dict, names: dict) -> dict[str, Any]:
    from llm_engineering.index_store.evaluation import run_queries, score_run

    scores = {}
    for mode in MODES:
        run, _ = run_queries(index, queries, names, mode, rerank=mode == "hybrid+rerank")
        scores[mode] = {k: round(v, 4) for k, v in score_run(run, qrels).items()}
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", choices=("train-half", "titles"), default="train-half")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".bench-cache")
    args = parser.parse_args()

    from retrieval_tuning import half

    from llm_engineering.adapters.retrieval_jobs import tuning_config
    from llm_engineering.config import load_settings
    from llm_engineering.index_store.evaluation import (
        _doc_file,
        load_qrels,
        load_queries,
        open_eval_index,
    )
    from llm_engineering.index_store.service import IndexService
    from llm_engineering.retrieval.tuner import RetrievalTuner, TuningOptions

    given = {}
    for item in args.sets:
        key, _, value = item.partition("=")
        given[key] = json.loads(value)
    config = tuning_config(given)
    settings = load_settings()
    queries = load_queries(args.data / "queries.jsonl")
    qrels = load_qrels(args.data / "qrels" / "train.tsv")
    score_half = {q: t for q, t in queries.items() if q in qrels and half(q) == "score"}
    tune_half = {q: t for q, t in queries.items() if q in qrels and half(q) == "tune"}
    score_qrels = {q: qrels[q] for q in score_half}

    base, names = open_eval_index(args.data / "corpus.jsonl", settings, args.cache_dir / "eval")
    docs = Path(base.settings.watch[0])
    source = base.settings.data_dir
    untuned = evaluate(base, score_half, score_qrels, names)
    base.close()
    say(f"untuned: {untuned}")

    work = args.cache_dir / "retrieval_tuning" / f"index-{args.variant}"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(source, work / "data")
    pairs = None
    if args.variant == "train-half":
        pairs = work / "pairs.jsonl"
        with pairs.open("w") as out:
            for qid, text in tune_half.items():
                positives = [str(docs / _doc_file(d)) for d, rel in qrels[qid].items() if rel > 0]
                out.write(json.dumps({"query": text, "positives": positives}) + "\n")
    index = IndexService(settings.model_copy(update={"data_dir": work / "data", "watch": [docs]}))
    started = time.perf_counter()

    def report(event: str, values: dict[str, Any]) -> None:
        if event != "step" or values["step"] % 10 == 0 or values["step"] == values["total"]:
            say(f"{event} {values}")

    result = RetrievalTuner(index, report).run(TuningOptions(pairs, config=config))
    whole = time.perf_counter() - started
    tuned = evaluate(index, score_half, score_qrels, names) if result.status == "switched" else None
    index.close()
    row = {
        "variant": args.variant,
        "config": given,
        "decision": result.status,
        "reason": result.reason,
        "pairs_trained": result.pairs,
        "heldout_pairs": result.heldout,
        "heldout_scores": result.scores,
        "tune_s": round(result.training.get("seconds", 0), 1),
        "steps": result.training.get("steps"),
        "reembed_s": result.shadow.get("seconds"),
        "chunks": result.shadow.get("chunks"),
        "whole_run_s": round(whole, 1),
        "score_half_queries": len(score_half),
        "untuned": untuned,
        "tuned": tuned,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    print(json.dumps(row, indent=2))
    with (args.cache_dir / "retrieval_tuning" / "index_results.jsonl").open("a") as log:
        log.write(json.dumps({"time": time.time(), **row}) + "\n")


if __name__ == "__main__":
    main()
