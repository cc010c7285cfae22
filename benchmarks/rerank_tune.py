"""Tune the offline reranker and the candidate pool on the SciFact train queries.

For every judged query the hybrid first stage is run once (pool of ``--pool`` chunks) and
the offline reranker's raw signals are computed once; weights are then searched by
coordinate ascent on nDCG@10 (ir-measures). To show the weights are not fitted to the
very queries they are scored on, a two-fold split is reported as well: tuned on one half,
scored on the other.

With ``--index DIR`` (a data folder ``retrieval_tuning_index.py`` left, whose live model is
the tuned one) the index searched is that one, and ``--halves`` fits the weights, the dense
weight among them, on issue 33's tune half (the claims the embedder was tuned on) and on
the score half itself (an upper bound: fitted on the very claims it is scored on), and
scores both on the score half: can the offline reranker, refitted, reach what tuning asks?

Usage: python benchmarks/rerank_tune.py [--data ../shared/data/scifact] [--pool 100]
       [--index .bench-cache/retrieval_tuning/index-train-half/data --halves]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "scifact"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".bench-cache" / "eval")
    parser.add_argument("--pool", type=int, default=100)
    parser.add_argument("--chunk-size", type=int, default=256)
    parser.add_argument("--chunk-overlap", type=int, default=32)
    parser.add_argument("--index", type=Path, help="a data folder to search instead")
    parser.add_argument("--halves", action="store_true", help="issue 33's halves, dense fitted")
    args = parser.parse_args()

    from llm_engineering.logs import setup_logging

    setup_logging("WARNING")
    from llm_engineering.config import load_settings
    from llm_engineering.index_store import evaluation
    from llm_engineering.index_store.models.reranking import (
        Candidate,
        OfflineReranker,
        OfflineWeights,
    )
    from llm_engineering.index_store.store.keyword import fts_query

    settings = load_settings(
        data_dir=args.cache_dir / "unused",
        chunk_size=args.chunk_size,
        chunk_overlap=args.chunk_overlap,
    )
    qrels = evaluation.load_qrels(args.data / "qrels" / "train.tsv")
    queries = {
        q: t for q, t in evaluation.load_queries(args.data / "queries.jsonl").items() if q in qrels
    }
    index, names = evaluation.open_eval_index(args.data / "corpus.jsonl", settings, args.cache_dir)
    if args.index is not None:
        from llm_engineering.index_store.service import IndexService

        docs = index.settings.watch
        index.close()
        index = IndexService(settings.model_copy(update={"data_dir": args.index, "watch": docs}))
        print(f"searching {args.index}: {index.status().embedding_model}")
    reranker = OfflineReranker(index.embedder(), index.keyword.document_frequency)

    # First stage once per query: the hybrid ranking, and the reranker's signals on its pool.
    started = time.perf_counter()
    stage: dict[str, tuple[list, dict[str, list[float]]]] = {}
    feature_ms = []
    for qid, text in queries.items():
        hits, _ = index.search(text, top_k=2 * evaluation.DEPTH, mode="hybrid")
        pool = hits[: args.pool]
        ids = [h.chunk_id for h in pool]
        t0 = time.perf_counter()
        vectors = index.vectors.embeddings(ids)
        match = fts_query(text)
        bm25 = index.keyword.bm25_for(match, ids) if match else {}
        candidates = [
            Candidate(h.text, h.heading, vectors.get(h.chunk_id), bm25.get(h.chunk_id, 0.0))
            for h in pool
        ]
        features = reranker.features(text, candidates)
        feature_ms.append((time.perf_counter() - t0) * 1000)
        stage[qid] = (hits, features)
    print(
        f"first stage + signals for {len(stage)} queries in {time.perf_counter() - started:.0f} s"
    )

    def run_for(weights: OfflineWeights, qids: list[str], pool: int) -> dict[str, dict[str, float]]:
        run = {}
        for qid in qids:
            hits, features = stage[qid]
            head = hits[:pool]
            cut = {name: values[:pool] for name, values in features.items()}
            scores = reranker.combine(cut, weights)
            order = sorted(range(len(head)), key=lambda i: -scores[i])
            ranked = [head[i] for i in order] + hits[pool:]
            run[qid] = evaluation.fold_to_documents(ranked, names)
        return run

    def ndcg(weights: OfflineWeights, qids: list[str], pool: int) -> float:
        return evaluation.score_run(
            run_for(weights, qids, pool), {q: qrels[q] for q in qids}, ["nDCG@10"]
        )["nDCG@10"]

    def tune(
        qids: list[str], pool: int, names_tuned: tuple[str, ...] = ("bm25", "coverage", "pairs")
    ) -> tuple[OfflineWeights, float]:
        best = OfflineWeights(dense=1.0, bm25=1.0, coverage=0.0, pairs=0.0)
        best_score = ndcg(best, qids, pool)
        steps = [0.8, 0.4, 0.2, 0.1, 0.05]
        for step in steps:
            improved = True
            while improved:
                improved = False
                for name in names_tuned:
                    for delta in (step, -step):
                        value = round(getattr(best, name) + delta, 3)
                        if value < 0:
                            continue
                        trial = OfflineWeights(**{**asdict(best), name: value})
                        score = ndcg(trial, qids, pool)
                        if score > best_score + 1e-5:
                            best, best_score, improved = trial, score, True
        return best, best_score

    all_qids = list(queries)
    if args.halves:
        from retrieval_tuning import half

        halves_of = {h: [q for q in all_qids if half(q) == h] for h in ("tune", "score")}
        score = halves_of["score"]
        every = ("dense", "bm25", "coverage", "pairs")
        rows: dict[str, object] = {"default weights": round(ndcg(OfflineWeights(), score, 50), 4)}
        for fitted_on in ("tune", "score"):
            weights, _ = tune(halves_of[fitted_on], 50, every)
            rows[f"fitted on the {fitted_on} half"] = {
                "weights": asdict(weights), "score half nDCG@10": round(ndcg(weights, score, 50), 4)
            }  # fmt: skip
        print(json.dumps({"index": str(args.index), "score half, pool 50": rows}, indent=2))
        return
    hybrid = evaluation.score_run(
        {q: evaluation.fold_to_documents(stage[q][0], names) for q in all_qids}, qrels
    )
    print("hybrid (no rerank):", json.dumps({k: round(v, 4) for k, v in hybrid.items()}))
    report: dict[str, object] = {"hybrid_nDCG@10": round(hybrid["nDCG@10"], 4), "pools": {}}
    for pool in sorted({20, 30, 50, args.pool}):
        if pool > args.pool:
            continue
        weights, score = tune(all_qids, pool)
        report["pools"][pool] = {"weights": asdict(weights), "nDCG@10": round(score, 4)}  # type: ignore[index]
        print(f"pool {pool}: tuned on all 809: nDCG@10 {score:.4f} with {weights}")

    rng = random.Random(13)
    shuffled = all_qids[:]
    rng.shuffle(shuffled)
    halves = [shuffled[: len(shuffled) // 2], shuffled[len(shuffled) // 2 :]]
    pool = min(50, args.pool)
    folds = []
    for i in (0, 1):
        weights, _ = tune(halves[i], pool)
        held_out = halves[1 - i]
        plain = evaluation.score_run(
            {q: evaluation.fold_to_documents(stage[q][0], names) for q in held_out},
            {q: qrels[q] for q in held_out},
            ["nDCG@10"],
        )["nDCG@10"]
        folds.append({"tuned_on": f"half {i}", "weights": asdict(weights), "held_out_hybrid": round(plain, 4),
                      "held_out_reranked": round(ndcg(weights, held_out, pool), 4)})  # fmt: skip
        print("fold", folds[-1])
    report["two_fold"] = folds
    report["signals_ms_p50"] = round(sorted(feature_ms)[len(feature_ms) // 2], 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
