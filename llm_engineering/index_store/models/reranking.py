"""Rerankers: score (query, passage) pairs more carefully than first-stage retrieval.

Two implementations of one small interface:

* :class:`CrossEncoderReranker`: any sentence-transformers ``CrossEncoder`` by name or
  path (``cross-encoder/ms-marco-MiniLM-L-6-v2``, ``BAAI/bge-reranker-base``...),
  batched, truncated to ``max_length`` tokens, on CUDA when there is one.
* :class:`OfflineReranker`: the default when no cross-encoder is configured or cached.
  No reranking model ships in a package here, so it combines what is installed, per
  query and over the candidate pool: the packaged embedding model's cosine similarity
  (stored vectors, so nothing is re-encoded for indexed chunks), the BM25 score, and
  how much of the query (IDF-weighted, and as adjacent word pairs) the passage covers.
  Each signal is standardised over the pool and the weights were tuned on the SciFact
  train queries (see ``benchmarks/README.md``).

Every result names the reranker that produced it.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from llm_engineering.errors import ModelLoadError, UserError
from llm_engineering.index_store.store.keyword import analyze

__all__ = [
    "DEFAULT_CROSS_ENCODER",
    "MAX_RERANK_DOCUMENTS",
    "Candidate",
    "CrossEncoderReranker",
    "OfflineReranker",
    "OfflineWeights",
    "Reranker",
    "check_documents",
]

log = logging.getLogger(__name__)

DEFAULT_CROSS_ENCODER = "cross-encoder/ms-marco-MiniLM-L-6-v2"
MAX_RERANK_DOCUMENTS = 200


@dataclass
class Candidate:
    """A passage to score. Indexed chunks bring their stored vector and BM25 score."""

    text: str
    heading: str = ""
    embedding: Sequence[float] | None = None
    bm25: float | None = None


class Reranker(Protocol):
    name: str
    uses_vectors: bool
    """True when the reranker wants the stored vectors of indexed candidates."""

    def score(self, query: str, candidates: Sequence[Candidate]) -> list[float]:
        """One relevance score per candidate, higher is better."""
        ...


def _sink_empty(candidates: Sequence[Candidate], scores: list[float]) -> list[float]:
    """Passages with no text rank below every passage with text."""
    empty = [i for i, c in enumerate(candidates) if not c.text.strip()]
    if empty:
        floor = (
            min(s for i, s in enumerate(scores) if i not in set(empty))
            if len(empty) < len(scores)
            else 0.0
        )
        for i in empty:
            scores[i] = floor - 1.0
    return scores


def check_documents(documents: Sequence[str], limit: int = MAX_RERANK_DOCUMENTS) -> None:
    """Raises UserError when there are too many documents to rerank in one call."""
    if len(documents) > limit:
        raise UserError(
            f"{len(documents)} documents given; rerank takes at most {limit} per call. "
            "Rerank the first-stage top results only, or split the list."
        )


# --- cross-encoder -------------------------------------------------------------------


class CrossEncoderReranker:
    """A sentence-transformers ``CrossEncoder``.

    Args:
        model: Hub name or local path.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``, ``mps``.
        batch_size: Pairs per forward pass.
        max_length: Tokens per (query, passage) pair; longer pairs are truncated.

    Raises:
        ModelLoadError: the model cannot be found or loaded.
    """

    uses_vectors = False

    def __init__(
        self, model: str, device: str = "auto", batch_size: int = 32, max_length: int = 512
    ):
        from llm_engineering.index_store.models.embeddings import (
            _in_hf_cache,
            hub_reachable,
            resolve_device,
        )

        self.model_name = model
        self.name = f"cross-encoder:{model}"
        self.batch_size = batch_size
        local = Path(model).expanduser()
        cached = not local.exists() and _in_hf_cache(model)
        if not local.exists() and not cached and not hub_reachable():
            raise ModelLoadError(
                f"reranker model {model!r} is not a local folder, not in the Hugging Face cache, and "
                "huggingface.co cannot be reached. Copy the model folder here and set reranker_model "
                "to its path, or leave reranker_model empty to use the offline reranker."
            )
        try:
            from sentence_transformers import CrossEncoder

            self._model: Any = CrossEncoder(
                str(local) if local.exists() else model,
                device=resolve_device(device),
                max_length=max_length,
                local_files_only=cached,
            )
        except Exception as exc:
            raise ModelLoadError(f"could not load reranker model {model!r}: {exc}") from exc
        self.max_length = max_length

    def score(self, query: str, candidates: Sequence[Candidate]) -> list[float]:
        if not candidates:
            return []
        pairs = [(query, candidate.text or " ") for candidate in candidates]
        scores = self._model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False)
        return _sink_empty(candidates, [float(s) for s in scores])


# --- offline default -----------------------------------------------------------------


@dataclass(frozen=True)
class OfflineWeights:
    """Weights of the standardised signals; tuned on SciFact train (benchmarks/rerank_tune.py)."""

    dense: float = 1.0
    bm25: float = 1.0
    coverage: float = 0.4
    pairs: float = 0.2


def _standardise(values: list[float]) -> list[float]:
    if len(values) < 2:
        return [0.0 for _ in values]
    mean = sum(values) / len(values)
    spread = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    if spread < 1e-12:
        return [0.0 for _ in values]
    return [(v - mean) / spread for v in values]


class OfflineReranker:
    """Cosine + BM25 + query coverage, standardised per query and weighted.

    Args:
        embedder: Gives query vectors (and passage vectors for candidates without one).
        document_frequency: term -> (documents containing it, total documents) over the
            index, for IDF; None falls back to the candidate pool itself.
        weights: Signal weights.
    """

    uses_vectors = True
    relevance_floor = 0.0
    """A passage scoring below the candidate pool's average (0 after standardising) is off topic."""

    def __init__(
        self,
        embedder: Any,
        document_frequency: Callable[[Sequence[str]], tuple[dict[str, int], int]] | None = None,
        weights: OfflineWeights | None = None,
    ):
        self._embedder = embedder
        self._df = document_frequency
        self.weights = weights or OfflineWeights()
        self.name = f"offline:{getattr(embedder, 'name', 'embedder')}+bm25+coverage"

    def features(self, query: str, candidates: Sequence[Candidate]) -> dict[str, list[float]]:
        """The raw signals per candidate (before standardising)."""
        import numpy as np

        query_vector = np.asarray(self._embedder.embed_query(query), dtype=np.float32)
        missing = [i for i, c in enumerate(candidates) if c.embedding is None]
        vectors: list[Any] = [c.embedding for c in candidates]
        if missing:
            texts = [
                (f"{candidates[i].heading}\n" if candidates[i].heading else "") + candidates[i].text
                for i in missing
            ]
            for i, vector in zip(missing, self._embedder.embed_documents(texts), strict=True):
                vectors[i] = vector
        matrix = np.asarray(vectors, dtype=np.float32).reshape(len(candidates), -1)
        norms = np.linalg.norm(matrix, axis=1) * (np.linalg.norm(query_vector) or 1.0)
        dense = (matrix @ query_vector) / np.where(norms == 0, 1.0, norms)

        terms = list(dict.fromkeys(analyze(query, drop_stopwords=True)))
        docs = [analyze(f"{c.heading}\n{c.text}") for c in candidates]
        idf = self._idf(terms, docs)
        bm25 = [
            c.bm25 if c.bm25 is not None else _bm25(terms, doc, idf, docs)
            for c, doc in zip(candidates, docs, strict=True)
        ]
        total_idf = sum(idf.get(t, 0.0) for t in terms) or 1.0
        query_pairs = list(itertools.pairwise(terms))
        coverage, pairs = [], []
        for doc in docs:
            present = set(doc)
            coverage.append(sum(idf.get(t, 0.0) for t in terms if t in present) / total_idf)
            doc_pairs = set(itertools.pairwise(doc))
            pairs.append(
                sum(1 for p in query_pairs if p in doc_pairs) / len(query_pairs)
                if query_pairs
                else 0.0
            )
        return {
            "dense": [float(x) for x in dense],
            "bm25": [float(x) for x in bm25],
            "coverage": coverage,
            "pairs": pairs,
        }

    def combine(
        self, features: dict[str, list[float]], weights: OfflineWeights | None = None
    ) -> list[float]:
        w = weights or self.weights
        parts = {name: _standardise(values) for name, values in features.items()}
        count = len(features["dense"])
        return [
            w.dense * parts["dense"][i]
            + w.bm25 * parts["bm25"][i]
            + w.coverage * parts["coverage"][i]
            + w.pairs * parts["pairs"][i]
            for i in range(count)
        ]

    def score(self, query: str, candidates: Sequence[Candidate]) -> list[float]:
        if not candidates:
            return []
        return _sink_empty(candidates, self.combine(self.features(query, candidates)))

    def _idf(self, terms: list[str], docs: list[list[str]]) -> dict[str, float]:
        counts: dict[str, int]
        total: int
        if self._df is not None:
            counts, total = self._df(terms)
        else:
            counts, total = {}, 0
        if total == 0:  # no index to learn from: the candidate pool is the collection
            total = len(docs)
            counts = {t: sum(1 for d in docs if t in d) for t in terms}
        return bm25_idf(terms, counts, total)


def bm25_idf(terms: Sequence[str], counts: dict[str, int], total: int) -> dict[str, float]:
    """BM25's inverse document frequency of each term: ``counts`` chunks of ``total`` hold it."""
    return {
        t: math.log(1 + (total - counts.get(t, 0) + 0.5) / (counts.get(t, 0) + 0.5)) for t in terms
    }


def _bm25(
    terms: list[str],
    doc: list[str],
    idf: dict[str, float],
    docs: list[list[str]],
    k1: float = 1.2,
    b: float = 0.75,
) -> float:
    if not doc:
        return 0.0
    average = sum(len(d) for d in docs) / len(docs) or 1.0
    score = 0.0
    for term in terms:
        tf = doc.count(term)
        if tf:
            score += idf[term] * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(doc) / average))
    return score
