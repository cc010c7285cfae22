"""Retrieval quality on a BEIR-format dataset, measured through the normal ingestion path.

Every corpus document is written as a Markdown file (``# title`` then the text) and
indexed like any user folder; the index is cached by the corpus hash and the settings
that shape it, so a second run only searches. Chunks are folded into documents by
their best chunk (the usual max-passage rule) and the runs are scored with
``ir-measures`` (pytrec_eval): nDCG@10, Recall@10, Recall@100 and MRR@10.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_engineering.config import Settings
from llm_engineering.errors import PathError, UserError
from llm_engineering.index_store.models.precision import resolve
from llm_engineering.index_store.query.search import Hit
from llm_engineering.index_store.service import IndexService

__all__ = [
    "METRICS",
    "EvalResult",
    "load_qrels",
    "load_queries",
    "open_eval_index",
    "run_queries",
    "score_run",
]

log = logging.getLogger(__name__)

METRICS = ("nDCG@10", "R@10", "R@100", "RR@10")
DEPTH = 100  # documents per query in a run (Recall@100 needs 100)


@dataclass
class EvalResult:
    mode: str
    metrics: dict[str, float]
    latency_ms_p50: float
    latency_ms_p95: float
    extra: dict[str, Any] = field(default_factory=dict)


def _require(path: Path, what: str) -> Path:
    if not path.is_file():
        raise PathError(f"{what} file {path} does not exist")
    return path


def load_queries(path: Path) -> dict[str, str]:
    """BEIR ``queries.jsonl``: one ``{"_id", "text"}`` per line."""
    queries = {}
    with _require(path, "queries").open() as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                queries[str(item["_id"])] = str(item["text"])
            except (ValueError, KeyError) as exc:
                raise UserError(f"{path}, line {number}: not a BEIR query ({exc})") from exc
    return queries


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    """BEIR qrels TSV: ``query-id  corpus-id  score`` with a header line."""
    qrels: dict[str, dict[str, int]] = {}
    with _require(path, "qrels").open() as handle:
        for number, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if not row or (number == 1 and not row[-1].strip().lstrip("-").isdigit()):
                continue
            try:
                qid, did, score = row[0], row[1], int(row[2])
            except (IndexError, ValueError) as exc:
                raise UserError(
                    f"{path}, line {number}: expected query-id, corpus-id, score"
                ) from exc
            qrels.setdefault(qid, {})[did] = score
    return qrels


def _doc_file(doc_id: str) -> str:
    safe = all(ch.isalnum() or ch in "-_." for ch in doc_id) and not doc_id.startswith(".")
    return f"{doc_id}.md" if safe else f"{hashlib.sha1(doc_id.encode()).hexdigest()[:20]}.md"


def _write_corpus(corpus: Path, folder: Path) -> dict[str, str]:
    """One Markdown file per document; returns file name -> document id."""
    folder.mkdir(parents=True, exist_ok=True)
    names: dict[str, str] = {}
    with corpus.open() as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
                doc_id = str(doc["_id"])
            except (ValueError, KeyError) as exc:
                raise UserError(f"{corpus}, line {number}: not a BEIR document ({exc})") from exc
            name = _doc_file(doc_id)
            title = str(doc.get("title") or "").strip()
            text = str(doc.get("text") or "").strip()
            (folder / name).write_text(f"# {title}\n\n{text}\n" if title else f"{text}\n")
            names[name] = doc_id
    return names


def open_eval_index(
    corpus: Path,
    settings: Settings,
    cache_dir: Path,
    progress: Callable[[int, int, str], None] | None = None,
) -> tuple[IndexService, dict[str, str]]:
    """Index ``corpus`` under ``cache_dir`` (reused when corpus and settings are unchanged).

    Returns:
        The index, and file name -> document id.
    """
    digest = hashlib.sha256()
    with _require(corpus, "corpus").open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    shape = f"{settings.embedding_model}|{settings.chunk_size}|{settings.chunk_overlap}"
    precision = resolve(settings.embedding_precision, None, "")
    if precision != "float32":  # float32 indexes keep the key they had before precisions
        shape += f"|{precision}"
    key = f"{digest.hexdigest()[:16]}-{hashlib.sha256(shape.encode()).hexdigest()[:8]}"
    root = cache_dir / key
    folder = root / "docs"
    names_file = root / "names.json"
    if names_file.is_file():
        names = json.loads(names_file.read_text())
    else:
        names = _write_corpus(corpus, folder)
        names_file.write_text(json.dumps(names))
    eval_settings = settings.model_copy(
        update={"data_dir": root / "data", "watch": [folder], "chroma_url": ""}
    )
    service = IndexService(eval_settings)
    report = service.ingest([folder], progress)
    if report.added or report.updated:
        log.info(
            "indexed %d documents for evaluation in %.0f s",
            report.added + report.updated,
            report.seconds,
        )
    return service, names


def _doc_id(hit: Hit, names: dict[str, str]) -> str:
    return names.get(Path(hit.path).name, Path(hit.path).stem)


def fold_to_documents(
    hits: Iterable[Hit], names: dict[str, str], depth: int = DEPTH
) -> dict[str, float]:
    """Document scores from ranked chunks: each document takes its best chunk's place."""
    scores: dict[str, float] = {}
    for rank, hit in enumerate(hits):
        doc_id = _doc_id(hit, names)
        if doc_id not in scores:
            scores[doc_id] = -float(rank)  # rank order, robust to any score scale
            if len(scores) == depth:
                break
    return scores


def run_queries(
    service: IndexService,
    queries: dict[str, str],
    names: dict[str, str],
    mode: str,
    rerank: bool = False,
    chunks: int = 2 * DEPTH,
) -> tuple[dict[str, dict[str, float]], list[float]]:
    """Search every query; returns the document run and per-query latencies (ms)."""
    run: dict[str, dict[str, float]] = {}
    latencies: list[float] = []
    search_mode = "hybrid" if mode == "hybrid+rerank" else mode
    for qid, text in queries.items():
        started = time.perf_counter()
        hits, _ = service.search(
            text,
            top_k=chunks,
            mode=search_mode,  # type: ignore[arg-type]
            rerank=rerank,
            # the pool users get: only the deeper tail (for Recall@100) is left unreranked
            rerank_pool=service.settings.rerank_candidates,
        )
        latencies.append((time.perf_counter() - started) * 1000)
        run[qid] = fold_to_documents(hits, names)
    return run, latencies


def score_run(
    run: dict[str, dict[str, float]],
    qrels: dict[str, dict[str, int]],
    metrics: Sequence[str] = METRICS,
) -> dict[str, float]:
    """Mean of each metric over the queries that have judgments (ir-measures / pytrec_eval)."""
    import ir_measures

    measures = [ir_measures.parse_measure(name) for name in metrics]
    qrel_rows = [
        ir_measures.Qrel(q, d, rel) for q, docs in qrels.items() for d, rel in docs.items()
    ]
    run_rows = [
        ir_measures.ScoredDoc(q, d, score) for q, docs in run.items() for d, score in docs.items()
    ]
    aggregate = ir_measures.calc_aggregate(measures, qrel_rows, run_rows)
    # A query with judgments but no results scores 0; calc_aggregate averages only over queries
    # it saw, so rescale to all judged queries.
    judged = [q for q in qrels if q in run]
    seen = {row.query_id for row in run_rows}
    factor = len(seen & set(judged)) / len(judged) if judged else 0.0
    return {
        name: float(aggregate[measure]) * factor
        for name, measure in zip(metrics, measures, strict=True)
    }


def summarize(
    mode: str, metrics: dict[str, float], latencies: list[float], **extra: Any
) -> EvalResult:
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] if ordered else 0.0
    return EvalResult(
        mode, metrics, statistics.median(latencies) if latencies else 0.0, p95, dict(extra)
    )
