"""Retrieval: dense (Chroma), keyword (BM25 over FTS5), or both fused by reciprocal rank.

Whatever the mode, results are read back from SQLite, so a vector left behind by a crash
or a concurrent delete can never surface as a stale hit; a hit whose file is gone from
disk (deleted, not yet forgotten) is dropped too.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from llm_engineering.index_store.models.reranking import Candidate, Reranker
from llm_engineering.index_store.query.fusion import reciprocal_rank_fusion
from llm_engineering.index_store.query.query_batch import QueryBatcher
from llm_engineering.index_store.store.keyword import KeywordIndex, fts_query
from llm_engineering.index_store.store.ledger import ChunkInFile, Ledger
from llm_engineering.index_store.store.vectors import VectorIndex, VectorsPaused

__all__ = ["Hit", "SearchMode", "Searcher", "normalize_file_types"]

SearchMode = Literal["hybrid", "dense", "keyword"]
SEARCH_MODES: tuple[str, ...] = ("hybrid", "dense", "keyword")


class QueryEmbedder(Protocol):
    def embed_query(self, text: str) -> list[float]: ...


@dataclass
class Hit:
    chunk_id: str
    path: str
    rel_path: str
    title: str
    text: str
    score: float
    heading: str = ""
    file_type: str = ""
    page: int | None = None
    start_line: int | None = None
    end_line: int | None = None
    retrieved_by: list[str] = field(default_factory=list)
    reranker: str | None = None


def normalize_file_types(file_types: Sequence[str] | None) -> list[str] | None:
    """``[".MD", "pdf"]`` -> ``["md", "pdf"]``; None or empty means no filter."""
    if not file_types:
        return None
    return sorted({ft.strip().lower().lstrip(".") for ft in file_types if ft.strip()}) or None


class Searcher:
    """Runs a query in one of the three modes, with path-prefix and file-type filters.

    Args:
        state: The ledger (the chunk rows hits are read back from).
        keyword: BM25 over the chunks, and the chunk ids a filter allows.
        vectors: Chroma collection.
        embedder: Returns the query embedder (loaded on first use).
        candidates: How many candidates each retriever gives the fusion.
        rrf_k: Reciprocal rank fusion constant.
        keyword_postings: Most postings a keyword search reads (0: no limit), see
            :meth:`KeywordIndex.selective`.
    """

    def __init__(
        self,
        state: Ledger,
        keyword: KeywordIndex,
        vectors: VectorIndex,
        embedder: Callable[[], QueryEmbedder],
        candidates: int = 50,
        rrf_k: int = 60,
        keyword_postings: int = 0,
        reranker: Callable[[], Reranker] | None = None,
        rerank_candidates: int = 50,
        batch_queries: bool = True,
    ):
        self._state = state
        self._keyword = keyword
        self._vectors = vectors
        self._embedder = embedder
        self.queries = QueryBatcher(embedder, enabled=batch_queries)
        """Query embeddings, batched across concurrent searches."""
        self._reranker = reranker
        self.candidates = candidates
        self.rrf_k = rrf_k
        self.keyword_postings = keyword_postings
        self.rerank_candidates = rerank_candidates

    def search(
        self,
        query: str,
        top_k: int = 5,
        mode: SearchMode = "hybrid",
        path_prefix: str | None = None,
        file_types: Sequence[str] | None = None,
        rerank: bool = False,
        rerank_pool: int | None = None,
    ) -> tuple[list[Hit], float]:
        """Returns (hits best first, milliseconds taken).

        With ``rerank``, the best ``rerank_pool`` first-stage results (default: the larger of
        ``rerank_candidates`` and ``top_k``) are scored again by the reranker and reordered;
        anything deeper keeps its first-stage order.
        """
        size = rerank_pool or max(self.rerank_candidates, top_k)
        # Loading models is not search time.
        embedder = self._embedder() if mode != "keyword" else None
        reranker = self._reranker() if rerank and self._reranker is not None else None
        if rerank and reranker is None:
            raise ValueError("no reranker is configured for this searcher")
        started = time.perf_counter()
        types = normalize_file_types(file_types)
        prefix = path_prefix or None
        pool = max(self.candidates, top_k, size if reranker else 0)
        match = fts_query(query)
        if match is not None and self.keyword_postings and (mode != "dense" or reranker):
            # Its rarest terms when all of them would read too many rows.
            match = self._keyword.selective(match, self.keyword_postings)
        ranked: dict[str, list[tuple[str, float]]] = {}
        if embedder is not None:
            allowed = self._keyword.filtered_chunk_ids(prefix, types) if (prefix or types) else None
            try:
                ranked["dense"] = self._vectors.query(
                    self.queries.embed_query(query), pool, allowed
                )
            except VectorsPaused:
                if mode == "dense":
                    raise
                ranked["dense"] = []  # a full disk paused the vectors: keyword hits still answer
        if mode in ("keyword", "hybrid"):
            ranked["keyword"] = (
                [] if match is None else self._keyword.keyword_search(match, pool, prefix, types)
            )

        if mode == "hybrid":
            fused = reciprocal_rank_fusion(
                [[cid for cid, _ in ranked["dense"]], [cid for cid, _ in ranked["keyword"]]],
                k=self.rrf_k,
            )
        else:
            fused = ranked[mode]
        by: dict[str, list[str]] = {}
        for name, found in ranked.items():
            for cid, _ in found:
                by.setdefault(cid, []).append(name)

        # Read back from SQLite: an id it no longer has (a vector a crash left) is dropped.
        rows = self._state.chunks_by_ids([cid for cid, _ in fused])
        fused = [(cid, score) for cid, score in fused if cid in rows]
        if reranker is not None:
            fused = self._rerank(reranker, query, match, fused, rows, size)
        hits: list[Hit] = []
        for cid, score in fused:
            if len(hits) == top_k:
                break
            row = rows[cid]
            # Deleted a moment ago and not yet forgotten (the watcher's latency): not a hit.
            if not os.path.exists(row.path):
                continue
            hits.append(
                Hit(
                    chunk_id=cid, path=row.path, rel_path=row.rel_path, title=row.title or "",
                    text=row.text, score=round(float(score), 6), heading=row.heading,
                    file_type=row.file_type, page=row.page, start_line=row.start_line,
                    end_line=row.end_line, retrieved_by=by.get(cid, []),
                    reranker=reranker.name if reranker is not None else None,
                )
            )  # fmt: skip
        return hits, (time.perf_counter() - started) * 1000.0

    def _rerank(
        self,
        reranker: Reranker,
        query: str,
        match: str | None,
        fused: list[tuple[str, float]],
        rows: dict[str, ChunkInFile],
        size: int,
    ) -> list[tuple[str, float]]:
        head, tail = fused[:size], fused[size:]
        ids = [cid for cid, _ in head]
        vectors: dict[str, list[float]] = {}
        if getattr(reranker, "uses_vectors", False):
            with contextlib.suppress(VectorsPaused):  # scored without them while paused
                vectors = self._vectors.embeddings(ids)
        bm25 = self._keyword.bm25_for(match, ids) if match else {}
        candidates = [
            Candidate(
                text=rows[cid].text,
                heading=rows[cid].heading,
                embedding=vectors.get(cid),
                bm25=bm25.get(cid, 0.0),
            )
            for cid in ids
        ]
        scores = reranker.score(query, candidates)
        order = sorted(
            range(len(ids)), key=lambda i: -scores[i]
        )  # stable: ties keep first-stage order
        lowest = min(scores) if scores else 0.0
        # What lies below the reranked pool keeps its order, scored under the pool's lowest.
        return [(ids[i], scores[i]) for i in order] + [
            (cid, lowest - 1.0 - n) for n, (cid, _) in enumerate(tail)
        ]
