"""A collection built beside the live one, and the scores that decide between them.

:func:`fill` makes a collection hold one vector, by its own model, for every chunk the ledger
holds now, and none for a chunk it no longer holds: the texts come from ``state.sqlite``, so
nothing is read or parsed again. Called in rounds while the live index keeps changing (the
watcher goes on indexing with the live model), then once more under the index's write lock
just before a switch: what changed during the build is in the new collection the moment it
answers, and nothing is there twice (a chunk id is a vector's id).

:func:`score` runs held-out queries through a collection the way ``search_docs`` runs a dense
search (chunks folded into files by their best chunk) and scores the files: nDCG@10 and
Recall@10 with every positive's file relevant.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

from llm_engineering.index_store.read.chunking import embedding_text
from llm_engineering.index_store.store.ledger import Ledger
from llm_engineering.index_store.store.vectors import VectorIndex, VectorRecord
from llm_engineering.retrieval.pairs import QueryPair

__all__ = ["Stopped", "fill", "score"]

BATCH = 256
DEPTH = 50  # chunks read per query before folding into files


class Stopped(Exception):
    """The build was asked to stop."""


def fill(
    vectors: VectorIndex,
    embedder: Any,
    ledger: Ledger,
    progress: Callable[[int, int], None] | None = None,
    stop: threading.Event | None = None,
) -> tuple[int, int]:
    """Make ``vectors`` hold exactly the ledger's chunks, embedding the missing ones.

    Returns:
        (vectors added, orphan vectors deleted).

    Raises:
        Stopped: ``stop`` was set between two batches (what was added stays).
    """
    in_ledger = ledger.all_chunk_ids()
    held = vectors.all_ids()
    orphans = sorted(held - in_ledger)
    vectors.delete(orphans)
    missing = sorted(in_ledger - held)
    done = 0
    for start in range(0, len(missing), BATCH):
        if stop is not None and stop.is_set():
            raise Stopped()
        chunks = ledger.chunks_by_ids(missing[start : start + BATCH])
        rows = list(chunks.values())  # a chunk removed meanwhile is left out (no orphan)
        made = embedder.embed_documents([embedding_text(c.text, c.heading) for c in rows])
        vectors.add(
            [
                VectorRecord(c.id, v, {"path": c.path, "file_type": c.file_type, "ordinal": c.ordinal})
                for c, v in zip(rows, made, strict=True)
            ]
        )  # fmt: skip
        done += len(rows)
        if progress is not None:
            progress(done, len(missing))
    return done, len(orphans)


def query_vectors(embedder: Any, queries: list[str]) -> list[list[float]]:
    batch = getattr(embedder, "embed_queries", None)
    if batch is not None:
        return list(batch(queries))
    return [embedder.embed_query(q) for q in queries]


def relevant_paths(ledger: Ledger, pair: QueryPair) -> set[str]:
    return {chunk.path for chunk in ledger.chunks_by_ids(list(pair.positives)).values()}


def score(
    vectors: VectorIndex, embedder: Any, ledger: Ledger, pairs: Sequence[QueryPair]
) -> dict[str, float]:
    """nDCG@10 and Recall@10 of dense search over ``vectors`` for the held-out ``pairs``."""
    ndcg: list[float] = []
    recall: list[float] = []
    queries = [pair.query for pair in pairs]
    for pair, vector in zip(pairs, query_vectors(embedder, queries), strict=True):
        relevant = relevant_paths(ledger, pair)
        if not relevant:
            continue  # its files left the index since
        ids = [chunk_id for chunk_id, _ in vectors.query(vector, DEPTH)]
        found = ledger.chunks_by_ids(ids)
        ranked: list[str] = []
        for chunk_id in ids:
            chunk = found.get(chunk_id)
            if chunk is not None and chunk.path not in ranked:
                ranked.append(chunk.path)
        top = ranked[:10]
        gain = sum(1 / math.log2(i + 2) for i, path in enumerate(top) if path in relevant)
        ideal = sum(1 / math.log2(i + 2) for i in range(min(len(relevant), 10)))
        ndcg.append(gain / ideal)
        recall.append(len(relevant & set(top)) / len(relevant))
    count = len(ndcg)
    return {
        "nDCG@10": round(sum(ndcg) / count, 4) if count else 0.0,
        "R@10": round(sum(recall) / count, 4) if count else 0.0,
        "queries": count,
    }
