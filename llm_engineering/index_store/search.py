"""Retrieval: dense (Chroma), keyword (BM25 over FTS5), or both fused by reciprocal rank.

Whatever the mode, results are read back from SQLite, so a vector left behind by a crash
or a concurrent delete can never surface as a stale hit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from llm_engineering.index_store.fusion import reciprocal_rank_fusion
from llm_engineering.index_store.keyword import fts_query
from llm_engineering.index_store.state import StateDB
from llm_engineering.index_store.vectors import VectorIndex

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


def normalize_file_types(file_types: Sequence[str] | None) -> list[str] | None:
    """``[".MD", "pdf"]`` -> ``["md", "pdf"]``; None or empty means no filter."""
    if not file_types:
        return None
    return sorted({ft.strip().lower().lstrip(".") for ft in file_types if ft.strip()}) or None


class Searcher:
    """Runs a query in one of the three modes, with path-prefix and file-type filters.

    Args:
        state: SQLite state (BM25 and the chunk rows).
        vectors: Chroma collection.
        embedder: Returns the query embedder (loaded on first use).
        candidates: How many candidates each retriever gives the fusion.
        rrf_k: Reciprocal rank fusion constant.
    """

    def __init__(
        self,
        state: StateDB,
        vectors: VectorIndex,
        embedder: Callable[[], QueryEmbedder],
        candidates: int = 50,
        rrf_k: int = 60,
    ):
        self._state = state
        self._vectors = vectors
        self._embedder = embedder
        self.candidates = candidates
        self.rrf_k = rrf_k

    def search(
        self,
        query: str,
        top_k: int = 5,
        mode: SearchMode = "hybrid",
        path_prefix: str | None = None,
        file_types: Sequence[str] | None = None,
    ) -> tuple[list[Hit], float]:
        """Returns (hits best first, milliseconds taken)."""
        embedder = self._embedder() if mode != "keyword" else None  # loading is not search time
        started = time.perf_counter()
        types = normalize_file_types(file_types)
        prefix = path_prefix or None
        pool = max(self.candidates, top_k)
        ranked: dict[str, list[tuple[str, float]]] = {}
        if embedder is not None:
            allowed = self._state.filtered_chunk_ids(prefix, types) if (prefix or types) else None
            ranked["dense"] = self._vectors.query(embedder.embed_query(query), pool, allowed)
        if mode in ("keyword", "hybrid"):
            match = fts_query(query)
            ranked["keyword"] = (
                [] if match is None else self._state.keyword_search(match, pool, prefix, types)
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
        hits: list[Hit] = []
        for cid, score in fused:
            row = rows.get(cid)
            if row is None:
                continue
            hits.append(
                Hit(
                    chunk_id=cid, path=row["path"], rel_path=row["rel_path"], title=row["title"] or "",
                    text=row["text"], score=round(float(score), 6), heading=row["heading"],
                    file_type=row["file_type"], page=row["page"], start_line=row["start_line"],
                    end_line=row["end_line"], retrieved_by=by.get(cid, []),
                )
            )  # fmt: skip
            if len(hits) == top_k:
                break
        return hits, (time.perf_counter() - started) * 1000.0
